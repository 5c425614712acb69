// BTF type information (the .BTF section, or a blob given to BPF_BTF_LOAD), parsed and checked by
// libbpf's BTF reader. Immutable and cheap to share.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"

struct btf;  // libbpf's

namespace bpfvm::obj {

// A function as BTF describes it (a FUNC and its FUNC_PROTO), for the verifier's global functions.
struct FuncSignature {
  std::string name;
  bool global = false;  // BTF_FUNC_GLOBAL: verified once on its own, against these types
  struct Param {
    enum class Kind : std::uint8_t { kScalar, kPointer, kOther } kind = Kind::kOther;
    std::string pointee;     // kPointer: the pointed-to struct's name ("" for other types)
    std::int64_t size = -1;  // kPointer: the pointed-to type's size (-1 for void or unknown)
  };
  std::vector<Param> params;
  bool returns_scalar = false;  // an integer or enum (not void, not a pointer)
};

class Btf {
 public:
  static Result<Btf> parse(std::span<const std::uint8_t> bytes);

  // libbpf's view, for the btf__* and btf_* functions of <bpf/btf.h>.
  const struct btf* get() const { return btf_.get(); }
  std::span<const std::uint8_t> bytes() const { return *bytes_; }

  // A string of the string section; "" for an offset out of range.
  std::string_view string_at(std::uint32_t offset) const;
  std::uint32_t type_count() const;  // including type 0 (void)
  // The name of a type ("" when anonymous or out of range).
  std::string_view type_name(std::uint32_t id) const;
  // The name of a type's kind as the kernel and bpftool write it ("STRUCT", "FUNC_PROTO"; "UNKNOWN"
  // for void, an unknown kind, or an id out of range).
  std::string_view kind_name(std::uint32_t id) const;
  // The byte offset of the one top-level member of struct `type_id` whose type is struct `member_type`
  // (after typedefs and modifiers): -1 when there is none, an error when there are several.
  Result<std::int32_t> find_struct_member(std::uint32_t type_id, std::string_view member_type) const;
  // The kptr fields of struct `type_id` (a map value), as the kernel's btf_find_kptr finds them: members
  // that are pointers (volatile allowed) to a type tagged kptr_untrusted, kptr, percpu_kptr or uptr, and
  // through to a struct; in nested structs and arrays too. An error for another tag there (the kernel's
  // map creation fails with EINVAL), or a tagged pointer to something other than a struct.
  struct KptrField {
    enum class Kind : std::uint8_t { kUntrusted, kReferenced, kPercpu, kUser };
    std::uint32_t offset = 0;
    Kind kind = Kind::kUntrusted;
    std::string pointee;  // the struct's name
  };
  Result<std::vector<KptrField>> kptr_fields(std::uint32_t type_id) const;
  // A struct (or, with `unions`, a union) named `name`, the first of that name; 0 when there is none.
  // (An index of the names, made at the first call: the kernel's BTF has some 100,000 types.)
  std::uint32_t find_struct(std::string_view name, bool unions = true) const;
  // A function (BTF_KIND_FUNC) named `name`, the first of that name; 0 when there is none (same index).
  std::uint32_t find_func(std::string_view name) const;
  // Where member `path` of struct or union `type_id` lies: "real_parent", "ns.inum" (a member of a
  // member), "numbers[2].nr" (an array element), found through anonymous members as C finds them.
  // nullopt when a name is not there, or the member is a bitfield.
  struct MemberPlace {
    std::uint32_t offset = 0;   // bytes from the start of `type_id`
    std::uint32_t size = 0;     // the member's size in bytes
    std::uint32_t type_id = 0;  // its type (typedefs and modifiers kept)
  };
  std::optional<MemberPlace> member_place(std::uint32_t type_id, std::string_view path) const;
  // The size of a type (after typedefs and modifiers); 0 when it has none.
  std::uint32_t type_size(std::uint32_t type_id) const;
  // The signature of FUNC `type_id`; an error when it is not a FUNC.
  Result<FuncSignature> function(std::uint32_t type_id) const;
  // FUNC `type_id` as C declares it, "int xdp_prog(struct xdp_md *ctx)"; an error when it is not a FUNC.
  Result<std::string> function_declaration(std::uint32_t type_id) const;
  // Every type as C declarations, each after the types it needs (libbpf's btf_dump), spelled as
  // bpftool's `btf dump ... format c` spells them.
  Result<std::string> c_declarations() const;

 private:
  struct NameIndex;
  const NameIndex& names() const;  // made at the first call, under a lock
  std::shared_ptr<const std::vector<std::uint8_t>> bytes_;
  std::shared_ptr<struct btf> btf_;
  mutable std::shared_ptr<const NameIndex> names_;  // made by names()
};

// The running kernel's types (/sys/kernel/btf/vmlinux), read and parsed once per process; later calls
// share it (or give the first call's error again).
Result<std::shared_ptr<const Btf>> running_kernel_btf();

}  // namespace bpfvm::obj
