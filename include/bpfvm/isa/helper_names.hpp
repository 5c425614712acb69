// Names of the kernel's helper functions by id, as the disassembler prints them ("bpf_trace_printk").
// The table is generated at compile time from linux-libc-dev's <linux/bpf.h> (__BPF_FUNC_MAPPER), so
// the ids are the kernel's by construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bpfvm::isa {

// "bpf_map_lookup_elem" for 1; nullopt for 0 (unspec) and unknown ids.
std::optional<std::string_view> helper_name(std::int32_t id);

// The id of "bpf_map_lookup_elem" or "map_lookup_elem"; nullopt if no such helper.
std::optional<std::int32_t> helper_id(std::string_view name);

// One past the highest id known.
std::int32_t helper_id_limit();

// The calls libbpf writes in place of an instruction it could not prepare for the target kernel (its
// bpf_core_poison_insn, poison_map_ldimm64 and poison_kfunc_call): the kernel accepts them in code no
// run reaches and refuses them where one does, and so does bpfvm.
enum class Poison : std::uint8_t {
  kNone,
  kCoreRelocation,  // 0xbad2310: a CO-RE relocation found nothing in the target's types
  kMissingMap,      // 2001000000 + map index: an ld_imm64 of a map that was not created (autocreate off)
  kMissingKfunc,    // 2002000000 + index: a call of a kfunc (a __weak extern) the kernel does not have
};
constexpr std::int32_t kPoisonCoreRelocation = 0xbad2310;
constexpr std::int32_t kPoisonMapBase = 2001000000, kPoisonKfuncBase = 2002000000;
constexpr Poison poison_of_call(std::int32_t imm) {
  if (imm == kPoisonCoreRelocation) return Poison::kCoreRelocation;
  if (imm >= kPoisonMapBase && imm < kPoisonKfuncBase) return Poison::kMissingMap;
  if (imm >= kPoisonKfuncBase && imm < kPoisonKfuncBase + 1000000) return Poison::kMissingKfunc;
  return Poison::kNone;
}

}  // namespace bpfvm::isa
