// A BPF object file as read from disk, before anything is loaded: its programs (linked with their
// subprograms, map references still symbolic), its map definitions (BTF-defined, legacy and global
// data), license, kernel version and BTF. This is what libbpf calls an opened but not loaded object.
//
// Map references in program code use the kernel's LDDW pseudo sources, with the *index* of the map in
// ObjectSpec::maps where the kernel expects a map fd:
//   lddw rX, map         src = BPF_PSEUDO_MAP_FD,    imm = map index
//   lddw rX, map + off   src = BPF_PSEUDO_MAP_VALUE, imm = map index, next imm = offset in the value
// and callbacks (bpf_loop) as src = BPF_PSEUDO_FUNC with a pc-relative imm, as libbpf leaves them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/btf_ext.hpp"
#include "bpfvm/obj/section_name.hpp"

namespace bpfvm::obj {

enum class MapOrigin {
  kBtf,      // a struct in the .maps section
  kLegacy,   // a struct bpf_map_def (or samples/bpf's, or iproute2's bpf_elf_map) in the "maps" section
  kData,     // .data, .data.*
  kRodata,   // .rodata, .rodata.* (frozen after its initial value is written)
  kBss,      // .bss (zeroes)
};

struct MapSpec {
  std::string name;  // as the kernel sees it (global data: "<object prefix>.<section>", 15 chars at most)
  std::string symbol;  // the C variable or section it came from
  MapOrigin origin = MapOrigin::kBtf;
  std::uint32_t type = 0;  // enum bpf_map_type
  std::uint32_t key_size = 0, value_size = 0, max_entries = 0, map_flags = 0;
  std::uint64_t map_extra = 0;  // bloom_filter: nr_hash_funcs
  std::uint32_t btf_key_type_id = 0, btf_value_type_id = 0;
  // `pinning` as written: libbpf's 1 (LIBBPF_PIN_BY_NAME), iproute2's 1 and 2 (PIN_OBJECT_NS,
  // PIN_GLOBAL_NS), or another loader's value, which loading refuses. pin_by_name: one bpfvm honours
  // (iproute2's are pinned by name in the object's pin directory, as libbpf's).
  std::uint32_t pinning = 0;
  bool pin_by_name = false;
  // Map-in-map: the inner map's definition, and initial slots (index -> map index in ObjectSpec::maps).
  std::shared_ptr<const MapSpec> inner;
  std::vector<std::pair<std::uint32_t, std::size_t>> initial_slots;
  // Program arrays: initial slots (index -> the name of a program of the object), set after loading.
  std::vector<std::pair<std::uint32_t, std::string>> initial_programs;
  // Global data: the section's bytes (empty for .bss), written at index 0 after creation.
  std::vector<std::uint8_t> initial_value;
};

struct ProgramSpec {
  std::string name;     // the function's symbol
  std::string section;  // its SEC() name
  ProgramKind kind;     // from the section name (prog_type 0 when the name is not libbpf's)
  std::vector<isa::RawInsn> insns;  // the entry function, then the subprograms it calls
  std::vector<FuncInfo> func_info;  // offsets in `insns`
  std::vector<LineInfo> line_info;
  std::vector<CoreRelo> core_relos;  // offsets in `insns`; applied by apply_core_relocations (obj/core.hpp)
  std::vector<std::size_t> maps_used;  // indexes into ObjectSpec::maps, sorted
  // Why the program could not be linked (an unresolved extern, a bad relocation), else nullopt; the
  // other programs of the object are still read. `insns` is empty then.
  std::optional<Error> link_error;
};

// An `extern ... __kconfig` variable: its bytes in the object's .kconfig map, filled for the target by
// fill_kconfig (obj/core.hpp) before loading, as libbpf does.
struct KconfigExtern {
  std::string name;  // LINUX_KERNEL_VERSION, CONFIG_HZ, ...
  std::uint32_t offset = 0, size = 0;
  enum class Kind : std::uint8_t { kBool, kTristate, kInt, kChars, kOther } kind = Kind::kOther;
  bool is_signed = false;
  bool weak = false;  // __weak: 0 when the target does not have it
};

struct ObjectSpec {
  std::string name;  // file name without directories and extensions, as libbpf names objects
  std::string license;
  std::uint32_t kern_version = 0;
  std::vector<ProgramSpec> programs;
  std::vector<MapSpec> maps;
  std::optional<Btf> btf;
  bool has_core_relocations = false;  // some program has CO-RE relocations (obj/core.hpp applies them)
  std::vector<KconfigExtern> kconfig;  // in the map named "<prefix>.kconfig", index kconfig_map
  std::size_t kconfig_map = 0;
  bool kconfig_filled = false;

  const ProgramSpec* find_program(std::string_view name) const;
  const MapSpec* find_map(std::string_view name) const;
};

// Reads an object from memory; `file_name` names it in errors and gives the object's name.
Result<ObjectSpec> read_object(std::span<const std::uint8_t> file, std::string_view file_name);
// Reads an object file.
Result<ObjectSpec> open_object(const std::string& path);

// A BPF object inside another file: a program built with a libbpf skeleton carries its .bpf.o as bytes.
struct EmbeddedObject {
  std::size_t offset = 0;  // in the host file
  std::span<const std::uint8_t> bytes;
};
// Every 64-bit little-endian relocatable BPF ELF image in `file` (its size from the ELF header's section
// table fields), in file order.
std::vector<EmbeddedObject> embedded_objects(std::span<const std::uint8_t> file);
// The objects of a file: a BPF object file is one; another ELF file (a libbpf-tools binary) gives the
// objects it embeds, named "<file>_bpf" as bpftool's skeletons name them; an error when it has none.
Result<std::vector<ObjectSpec>> open_objects(const std::string& path);

// libbpf's object name for a path: the base name up to its first '.'.
std::string object_name_for(std::string_view path);

}  // namespace bpfvm::obj
