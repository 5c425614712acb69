// Map definitions of an object: legacy "maps" structs, BTF-defined ".maps" and global data sections.
// Private to src/obj.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bpfvm/obj/object_spec.hpp"
#include "elf_file.hpp"

namespace bpfvm::obj::detail {

struct MapTable {
  std::vector<MapSpec> maps;
  // How relocations find a map: (section index, symbol offset) for legacy and BTF maps, section index
  // for global data.
  std::map<std::pair<std::size_t, std::uint64_t>, std::size_t> by_symbol;
  std::map<std::size_t, std::size_t> by_data_section;
  // iproute2's struct bpf_elf_map ids (map index by id), and whether the object uses that layout.
  std::map<std::uint32_t, std::size_t> by_elf_id;
  // __kconfig externs by name: (map index, offset in its value).
  std::map<std::string, std::pair<std::size_t, std::uint32_t>> kconfig_by_name;
  bool iproute2 = false;
};

bool is_data_section(const ElfSection& s);

Result<void> read_legacy_maps(const ElfFile& elf, MapTable& table);
Result<void> read_btf_maps(const ElfFile& elf, const Btf* btf, MapTable& table);
Result<void> read_data_maps(const ElfFile& elf, const Btf* btf, std::string_view object_name, MapTable& table);
// The `__kconfig` externs (BTF DATASEC ".kconfig") laid out in one read-only map, as libbpf does.
Result<void> read_kconfig_externs(const Btf* btf, std::string_view object_name, MapTable& table,
                                  std::vector<KconfigExtern>& out, std::size_t& map_index);

}  // namespace bpfvm::obj::detail
