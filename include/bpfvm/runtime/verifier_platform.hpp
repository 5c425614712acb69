// The verifier's view of bpfvm's runtime for one program: the helpers bpfvm implements (with their
// prototypes, allowed per program type as Linux allows them), the maps the program refers to (by the
// LDDW handle it uses) and the context rules of its program type.
#pragma once

#include <cstdint>
#include <map>
#include <span>
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
  bool helper_allowed(std::int32_t id) const override;
  const verifier::MapInfo* map(std::int64_t handle) const override;
  verifier::CtxField ctx_access(std::int32_t off, std::uint32_t size, bool write) const override;
  std::string_view prog_type_name() const override;
  bool legacy_packet_loads() const override;
  bool packet_writable() const override;
  bool gpl_compatible() const override { return gpl_; }
  const verifier::GlobalFunction* global_function(std::uint32_t insn) const override;
  std::optional<std::pair<std::int64_t, std::int64_t>> return_range() const override;
  bool return_value_ignored() const override;

  // The program's expected attach type: some types' context and return rules depend on it
  // (cgroup_sock_addr's connect4 against recvmsg6, cgroup_skb's egress...).
  void set_expected_attach_type(std::uint32_t attach) { attach_type_ = attach; }

  // The program's global functions from its BTF and func_info (each FUNC with global linkage but the
  // entry): parameters by type (integers; a pointer to this type's context struct; a pointer to sized
  // memory), or why the kernel would refuse the signature.
  void set_global_functions(const obj::Btf& btf, std::span<const obj::FuncInfo> func_info);

  // The verifier's description of a map.
  static verifier::MapInfo map_info(const maps::MapDef& def);

 private:
  std::uint32_t prog_type_;
  std::uint32_t attach_type_ = 0;
  std::vector<verifier::MapInfo> maps_;
  bool gpl_;
  std::map<std::uint32_t, verifier::GlobalFunction> globals_;  // by first instruction
};

}  // namespace bpfvm::runtime
