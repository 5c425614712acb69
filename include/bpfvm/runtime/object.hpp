// A BPF object file loaded into a Runtime, as libbpf's bpf_object__open + load does: CO-RE relocations
// applied against the target kernel's types, BTF loaded, maps
// created (global data written, .rodata frozen, map-in-map slots filled, pinned-by-name maps reused or
// pinned), then every program loaded with its map references resolved.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/obj/core.hpp"
#include "bpfvm/obj/object_spec.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {

// The definition a map of an object is created with (as libbpf fills in what the object leaves out).
maps::MapDef map_def(const obj::MapSpec& m);

struct ObjectOptions {
  ExecMode mode = default_exec_mode();
  // Where maps with pinning = LIBBPF_PIN_BY_NAME live (libbpf's default is /sys/fs/bpf, which the
  // runtime maps onto its pin root).
  std::string pin_maps_dir = "/sys/fs/bpf";
  // Load only programs of types bpfvm supports instead of failing on the first one it does not.
  bool skip_unsupported = false;
  // The target of CO-RE relocations (libbpf's btf_custom_path); the running kernel's BTF when unset.
  std::optional<std::string> core_btf;
  // The loaded program the object's extensions (freplace/FUNC) replace a function of, by FUNC's name
  // in its BTF (libbpf's bpf_program__set_attach_target).
  std::shared_ptr<const Program> extension_target;
};

// Applies an object's CO-RE relocations against `btf_path`, else the running kernel's BTF (each target
// read once per process), as loading does; veristat calls it before verifying.
Result<std::vector<obj::CoreOutcome>> apply_core(obj::ObjectSpec& spec, const std::optional<std::string>& btf_path);

class Object {
 public:
  static Result<Object> load(Runtime& runtime, const obj::ObjectSpec& spec, const ObjectOptions& options = {});
  static Result<Object> open_file(Runtime& runtime, const std::string& path, const ObjectOptions& options = {});

  struct NamedProgram {
    std::string name;  // the full function name (the kernel keeps 15 characters)
    std::string section;
    std::shared_ptr<Program> program;
  };
  const std::vector<NamedProgram>& programs() const { return programs_; }
  const std::vector<std::shared_ptr<Map>>& maps() const { return maps_; }
  std::shared_ptr<Program> find_program(std::string_view name) const;
  std::shared_ptr<Map> find_map(std::string_view name) const;
  const std::shared_ptr<BtfObject>& btf() const { return btf_; }

 private:
  std::vector<NamedProgram> programs_;
  std::vector<std::shared_ptr<Map>> maps_;
  std::vector<std::string> map_symbols_;
  std::shared_ptr<BtfObject> btf_;
  // Shared by the copies of this object; when the last goes, its program arrays that no pin holds are
  // emptied, as closing libbpf's map fds makes the kernel do.
  std::shared_ptr<void> release_;
};

}  // namespace bpfvm::runtime
