// Verifying the programs of an object without loading it (bpfvm veristat): each program is checked
// against the maps the object declares, as it would be at load time, and timed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/obj/object_spec.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::runtime {

struct ProgramVerdict {
  std::string program, section;
  std::uint32_t prog_type = 0;
  bool accepted = false;
  verifier::VerifierStats stats;        // of the exploration (up to the rejection when refused)
  std::chrono::nanoseconds duration{};  // of verify() alone
  std::string message;                  // refused: the short reason ("R0 invalid mem access ...")
  std::string explanation;              // refused: verifier::explain with the source lines
  std::string log;                      // the log_level trace, when asked for
};

// Every program of `spec`, with its type from its section name unless `prog_type` overrides it. With
// `runs` > 1 each program is verified that many times in a row and `duration` is the shortest (a
// benchmark's measure: the first run of a program after others pays for cold caches).
std::vector<ProgramVerdict> verify_object(const obj::ObjectSpec& spec, std::optional<std::uint32_t> prog_type = {},
                                          std::uint32_t log_level = 0, std::uint32_t runs = 1);

class VerifierPlatform;
// A tracing program's target for `platform` (nothing to do for other types): the kernel function or raw
// tracepoint attach_btf_id names in the running kernel's BTF, else the one its SEC name names
// (kind.attach_target). A struct_ops program's type and member: attach_btf_id and the expected attach
// type, else kind.attach_target ("TYPE:MEMBER", from the object's struct_ops variable). The id it took
// (0 for other types); an error when there is neither, or the kernel has no such target.
Result<std::uint32_t> tracing_target(VerifierPlatform& platform, std::uint32_t prog_type, const obj::ProgramKind& kind,
                            std::uint32_t attach_btf_id = 0);
// A program of another type that reaches kernel objects by a helper (bpf_get_current_task_btf) or
// through a map's kptr fields gets the running kernel's types to walk them (where there are none, the
// verifier says so at the call or the load).
void kernel_types_for_helpers(VerifierPlatform& platform, std::span<const isa::RawInsn> insns);

// An object's program with its map references (BPF_PSEUDO_MAP_FD/_VALUE, whose imm is an index into
// ObjectSpec::maps) turned into the BPF_PSEUDO_MAP_IDX/_IDX_VALUE form the runtime and verifier take.
std::vector<isa::RawInsn> map_references_by_index(std::span<const isa::RawInsn> insns);

// Per instruction, "file.c:31: the source line" from BTF line_info (each record holds until the next);
// empty strings where there is none.
std::vector<std::string> source_lines(const obj::Btf* btf, std::span<const obj::LineInfo> line_info, std::size_t insns);

}  // namespace bpfvm::runtime
