// The verifier's view of bpfvm's runtime for one program: the helpers bpfvm implements (with their
// prototypes, allowed per program type as Linux allows them), the maps the program refers to (by the
// LDDW handle it uses) and the context rules of its program type.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "bpfvm/maps/map.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/btf_ext.hpp"
#include "bpfvm/verifier/platform.hpp"

namespace bpfvm::runtime {

class VerifierPlatform final : public verifier::Platform {
 public:
  // `maps[i]` answers handle i (BPF_PSEUDO_MAP_IDX i, or an fd the caller numbered so); a map of
  // maps names its inner maps' template by another handle (MapInfo::inner).
  VerifierPlatform(std::uint32_t prog_type, std::vector<verifier::MapInfo> maps, bool gpl_compatible = true);

  const verifier::HelperSignature* helper(std::int32_t id) const override;
  const verifier::MapInfo* map(std::int64_t handle) const override;
  verifier::CtxField ctx_access(std::int32_t off, std::uint32_t size, bool write) const override;
  std::string_view prog_type_name() const override;
  bool legacy_packet_loads() const override;
  bool packet_writable() const override;
  bool gpl_compatible() const override { return gpl_; }
  const verifier::GlobalFunction* global_function(std::uint32_t insn) const override;
  std::optional<std::pair<std::int64_t, std::int64_t>> return_range() const override;
  bool return_value_ignored() const override;
  verifier::BtfField btf_access(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const override;
  std::string btf_type_name(std::uint32_t type_id) const override;
  std::uint32_t btf_struct_id(std::string_view name) const override;
  bool btf_struct_at(std::uint32_t have, std::int64_t off, std::uint32_t want) const override;
  // The kernel's types for a program that is not a tracing program but reaches kernel objects
  // (bpf_get_current_task_btf): btf_access walks them. A tracing target's BTF, when set, stays.
  void use_kernel_types(std::shared_ptr<const obj::Btf> btf);

  // The program's expected attach type: some types' context and return rules depend on it
  // (cgroup_sock_addr's connect4 against recvmsg6, cgroup_skb's egress...).
  void set_expected_attach_type(std::uint32_t attach) { attach_type_ = attach; }
  // BPF_F_SLEEPABLE: helpers that may sleep are allowed.
  void set_sleepable(bool on) { sleepable_ = on; }
  bool sleepable() const override { return sleepable_; }

  // The program's global functions from its BTF and func_info (each FUNC with global linkage but the
  // entry): parameters by type (integers; a pointer to this type's context struct; a pointer to sized
  // memory), or why the kernel would refuse the signature.
  // `entry`: the entry function's signature too (an extension program's entry is verified as a global
  // function: VerifierOptions::entry_is_global).
  void set_global_functions(const obj::Btf& btf, std::span<const obj::FuncInfo> func_info, bool entry = false);

  // The verifier's description of a map.
  static verifier::MapInfo map_info(const maps::MapDef& def);
  // Whether a map of the program has kptr fields (whose structs are the kernel's).
  bool has_kptrs() const {
    for (const auto& m : maps_) {
      if (!m.kptrs.empty()) return true;
    }
    return false;
  }
  // The kptr fields of a value of BTF type `value_type_id` (obj::Btf::kptr_fields), added to `info`.
  static Result<void> add_kptrs(verifier::MapInfo& info, const obj::Btf& btf, std::uint32_t value_type_id);

  // A tracing program's target (BPF_PROG_TYPE_TRACING: fentry/fexit/fmod_ret on a kernel function,
  // tp_btf on a raw tracepoint), as attach_btf_id names it in `btf` (the kernel's types): its arguments
  // are the context, typed (a pointer to a kernel struct is a PTR_TO_BTF_ID the program may read
  // through). An error when the id is not a FUNC or a btf_trace_* typedef.
  Result<void> set_btf_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t attach_btf_id);
  // The id attach_btf_id takes for a target named as in a SEC name: fentry/fexit/fmod_ret: the FUNC
  // `name`; tp_btf: the typedef btf_trace_<name>. An error that says so when the kernel has none.
  // The target set_btf_target found: its name and how many arguments it has (without fexit's return value).
  const std::string& target_name() const { return target_name_; }
  std::uint32_t target_params() const { return target_params_; }
  static Result<std::uint32_t> find_btf_target(const obj::Btf& btf, std::uint32_t expected_attach_type,
                                               std::string_view name);
  // A struct_ops program's member (BPF_PROG_TYPE_STRUCT_OPS): attach_btf_id names one of the kernel's
  // struct_ops types in `btf` (tcp_congestion_ops...), the expected attach type the member's index. The
  // member's prototype gives the context (its arguments, as a tracing program's) and the return rule
  // (none when it returns void); the type its helpers and the fields its programs may write. An error
  // as check_struct_ops_btf_id gives one.
  Result<void> set_struct_ops_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t struct_id, std::uint32_t member);
  // "TYPE:MEMBER", as an object's struct_ops variable points to a program: the type's id in `btf` and the
  // member's index there (libbpf matches the member by name).
  static Result<std::pair<std::uint32_t, std::uint32_t>> find_struct_ops_target(const obj::Btf& btf, std::string_view name);
  // An LSM program's hook (attach_btf_id: the kernel's bpf_lsm_HOOK function): its arguments are the
  // context, as a tracing program's; it returns 0 or a negative errno (bool hooks 0 or 1, void hooks
  // anything; under BPF_LSM_CGROUP 0 or 1, and 1 at a void hook). An error as bpf_check_attach_target
  // and bpf_lsm_verify_prog give: a sleepable program at a hook that may not sleep, a hook the kernel
  // disabled, a bpf_lsm_ function that is no hook. Set sleepable (set_sleepable) first.
  Result<void> set_lsm_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t attach_btf_id);
  bool helper_allowed(std::int32_t id) const override;
  std::string helper_refused_here(std::int32_t id) const override;
  bool return_unread() const override { return struct_ops_void_ || lsm_ret_ == LsmReturn::kVoid; }
  bool return_range_32bit() const override {
    return attach_type_ != BPF_LSM_CGROUP && (lsm_ret_ == LsmReturn::kBool || lsm_ret_ == LsmReturn::kErrno);
  }
  verifier::BtfField btf_write(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const override;

 private:
  std::uint32_t prog_type_;
  std::uint32_t attach_type_ = 0;
  bool sleepable_ = false;
  std::vector<verifier::MapInfo> maps_;
  bool gpl_;
  std::map<std::uint32_t, verifier::GlobalFunction> globals_;  // by first instruction
  std::shared_ptr<const obj::Btf> target_btf_;
  std::string target_name_;
  std::vector<std::uint32_t> target_args_;  // argument types (fexit: then the return type)
  std::vector<bool> nullable_args_;         // which may be NULL (a parameter named "..__nullable", or listed)
  std::vector<bool> error_args_;            // which may hold an error pointer: numbers
  std::uint32_t target_params_ = 0;
  std::string struct_ops_, struct_ops_member_;  // a struct_ops program's type and member
  bool struct_ops_void_ = false;                // ... which returns void
  // An LSM hook's result: none set, void, yes or no, 0 or -errno; a cgroup LSM program's at a void hook.
  enum class LsmReturn : std::uint8_t { kNone, kVoid, kBool, kErrno, kCgroupVoid } lsm_ret_ = LsmReturn::kNone;
  std::string lsm_hook_;  // an LSM program's hook, without bpf_lsm_
  std::uint32_t sock_id_ = 0, tcp_sock_id_ = 0;  // tcp_congestion_ops: its socket is a tcp_sock
  struct Writable {
    std::int64_t off, size;
    bool anywhere;  // from any offset inside it, not only its start
  };
  std::vector<Writable> writable_;  // ... the fields of it a program may write (btf_write)
  void find_writable_fields();
};

}  // namespace bpfvm::runtime
