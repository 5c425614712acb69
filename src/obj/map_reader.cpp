#include "map_reader.hpp"

#include <bpf/btf.h>
#include <gelf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace bpfvm::obj::detail {

namespace {

constexpr std::uint32_t kPinByName = 1;  // LIBBPF_PIN_BY_NAME
constexpr std::uint32_t kPinObjectNs = 1, kPinGlobalNs = 2;  // iproute2's PIN_OBJECT_NS, PIN_GLOBAL_NS

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

const struct btf_type* skip_mods(const struct btf* btf, std::uint32_t id, std::uint32_t* out_id = nullptr) {
  const struct btf_type* t = btf__type_by_id(btf, id);
  for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 32; ++guard) {
    id = t->type;
    t = btf__type_by_id(btf, id);
  }
  if (out_id) *out_id = id;
  return t;
}

// __uint(name, N) is `int (*name)[N]`: a pointer to an array of N elements.
Result<std::uint32_t> uint_member(const struct btf* btf, const struct btf_member& m, std::string_view field) {
  const struct btf_type* ptr = skip_mods(btf, m.type);
  if (!ptr || !btf_is_ptr(ptr)) return make_error(Errc::kInvalid, "field '{}' is not declared with __uint()", field);
  const struct btf_type* arr = skip_mods(btf, ptr->type);
  if (!arr || !btf_is_array(arr)) return make_error(Errc::kInvalid, "field '{}' is not declared with __uint()", field);
  return btf_array(arr)->nelems;
}

// __type(name, T) is `T *name`.
Result<std::uint32_t> type_member(const struct btf* btf, const struct btf_member& m, std::string_view field) {
  const struct btf_type* ptr = skip_mods(btf, m.type);
  if (!ptr || !btf_is_ptr(ptr)) return make_error(Errc::kInvalid, "field '{}' is not declared with __type()", field);
  return ptr->type;
}

Result<std::uint32_t> type_size(const struct btf* btf, std::uint32_t id, std::string_view field) {
  const long long size = btf__resolve_size(btf, id);
  if (size <= 0 || size > (1ll << 31)) return make_error(Errc::kInvalid, "the type of '{}' has no usable size", field);
  return static_cast<std::uint32_t>(size);
}

struct ParsedDef {
  MapSpec spec;
  std::uint32_t values_offset = 0;  // byte offset of the `values` member, when there is one
  bool has_values = false;
};

// One BTF map definition struct (struct { __uint(type, ...); __type(key, ...); ... }).
Result<ParsedDef> parse_map_def(const struct btf* btf, const struct btf_type* def, bool inner) {
  ParsedDef out;
  MapSpec& spec = out.spec;
  const struct btf_member* members = btf_members(def);
  for (unsigned i = 0; i < btf_vlen(def); ++i) {
    const struct btf_member& m = members[i];
    const char* raw_name = btf__name_by_offset(btf, m.name_off);
    const std::string_view field = raw_name ? raw_name : "";
    if (field == "type") {
      spec.type = BPFVM_TRY(uint_member(btf, m, field));
    } else if (field == "max_entries") {
      spec.max_entries = BPFVM_TRY(uint_member(btf, m, field));
    } else if (field == "map_flags") {
      spec.map_flags = BPFVM_TRY(uint_member(btf, m, field));
    } else if (field == "numa_node") {
      (void)BPFVM_TRY(uint_member(btf, m, field));
    } else if (field == "map_extra") {
      spec.map_extra = BPFVM_TRY(uint_member(btf, m, field));
    } else if (field == "key_size" || field == "value_size") {
      const std::uint32_t size = BPFVM_TRY(uint_member(btf, m, field));
      std::uint32_t& slot = field == "key_size" ? spec.key_size : spec.value_size;
      if (slot != 0 && slot != size) return make_error(Errc::kInvalid, "'{}' conflicts with the size of its type", field);
      slot = size;
    } else if (field == "key" || field == "value") {
      const std::uint32_t id = BPFVM_TRY(type_member(btf, m, field));
      const std::uint32_t size = BPFVM_TRY(type_size(btf, id, field));
      const bool key = field == "key";
      std::uint32_t& slot = key ? spec.key_size : spec.value_size;
      if (slot != 0 && slot != size) {
        return make_error(Errc::kInvalid, "'{}' has size {} but the definition says {}", field, size, slot);
      }
      slot = size;
      (key ? spec.btf_key_type_id : spec.btf_value_type_id) = id;
    } else if (field == "pinning") {
      // Other values are other loaders' (cilium's CILIUM_PIN_REPLACE, 16): kept, refused at load.
      spec.pinning = BPFVM_TRY(uint_member(btf, m, field));
      spec.pin_by_name = spec.pinning == kPinByName;
    } else if (field == "values") {
      if (inner) return make_error(Errc::kInvalid, "an inner map definition cannot have 'values'");
      // __array(values, struct inner) is `typeof(struct inner) *values[]`.
      const struct btf_type* arr = skip_mods(btf, m.type);
      if (!arr || !btf_is_array(arr) || btf_array(arr)->nelems != 0) {
        return make_error(Errc::kInvalid, "'values' must be declared with __array()");
      }
      const struct btf_type* ptr = skip_mods(btf, btf_array(arr)->type);
      if (!ptr || !btf_is_ptr(ptr)) return make_error(Errc::kInvalid, "'values' must be an array of pointers");
      const struct btf_type* target = skip_mods(btf, ptr->type);
      if (btf_member_bitfield_size(def, i) != 0 || btf_member_bit_offset(def, i) % 8 != 0) {
        return make_error(Errc::kInvalid, "'values' is not byte aligned");
      }
      out.has_values = true;
      out.values_offset = btf_member_bit_offset(def, i) / 8;
      if (target && btf_is_struct(target)) {
        ParsedDef nested = BPFVM_TRY_CTX(parse_map_def(btf, target, true), "inner map");
        nested.spec.name = "<inner>";
        spec.inner = std::make_shared<MapSpec>(std::move(nested.spec));
      } else if (!target || !btf_is_func_proto(target)) {
        return make_error(Errc::kInvalid, "'values' must point to a map definition or a program type");
      }
    } else {
      return make_error(Errc::kNotSupported, "unknown field '{}'", field);
    }
  }
  if (spec.type == 0) return make_error(Errc::kInvalid, "the definition has no 'type'");
  const bool map_in_map = spec.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || spec.type == BPF_MAP_TYPE_HASH_OF_MAPS;
  if (map_in_map) {
    if (!spec.inner) return make_error(Errc::kInvalid, "a map-in-map needs __array(values, <inner map definition>)");
    if (spec.value_size == 0) spec.value_size = 4;  // user space writes inner map fds
  } else if (spec.inner) {
    return make_error(Errc::kInvalid, "only array_of_maps and hash_of_maps have an inner map");
  }
  if (spec.type == BPF_MAP_TYPE_PROG_ARRAY && spec.value_size == 0 && out.has_values) spec.value_size = 4;
  return out;
}

std::string sanitized_map_name(std::string name) {
  if (name.size() > BPF_OBJ_NAME_LEN - 1) name.resize(BPF_OBJ_NAME_LEN - 1);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
  }
  return name;
}

}  // namespace

bool is_data_section(const ElfSection& s) {
  if (s.type != SHT_PROGBITS && s.type != SHT_NOBITS) return false;
  if (!(s.flags & SHF_ALLOC) || (s.flags & SHF_EXECINSTR)) return false;
  const auto family = [&](std::string_view base) {
    return s.name == base || (s.name.size() > base.size() + 1 && s.name.starts_with(base) && s.name[base.size()] == '.');
  };
  return family(".data") || family(".rodata") || family(".bss");
}

// Legacy definitions in the "maps" section. Every definition has the same size (the section's size over
// its symbols); the layout depends on who wrote it:
//   20 bytes     struct bpf_map_def (type, key_size, value_size, max_entries, map_flags), libbpf's;
//   24/28 bytes  samples/bpf's bpf_load.c adds inner_map_idx (a map-in-map's inner template, by index
//                in the section) and numa_node; iproute2 before 4.12 added id and pinning there;
//   36 bytes+    iproute2's struct bpf_elf_map: id, pinning (1 object, 2 global namespace), inner_id
//                (a map-in-map's template, by id), inner_idx (this map's slot in the map-in-map whose id
//                is inner_id).
// Bytes past the known fields must be zero (libbpf's rule for larger definitions).
Result<void> read_legacy_maps(const ElfFile& elf, MapTable& table) {
  const ElfSection* sec = elf.find_section("maps");
  if (!sec) return {};
  std::vector<const ElfSymbol*> syms;
  for (const ElfSymbol& s : elf.symbols()) {
    if (s.section == sec->index && s.type != STT_SECTION && !s.name.empty()) syms.push_back(&s);
  }
  if (syms.empty()) return {};
  std::sort(syms.begin(), syms.end(), [](auto* a, auto* b) { return a->value < b->value; });
  const std::uint64_t def_size = sec->size / syms.size();
  constexpr std::uint64_t kMapDef = 20, kSamples = 28, kElfMap = 36;
  if (def_size < kMapDef || sec->size % syms.size() != 0 || sec->bytes.size() != sec->size) {
    return make_error(Errc::kInvalid, "section 'maps': {} bytes do not divide into {} map definitions", sec->size,
                      syms.size());
  }
  const std::uint64_t known = def_size >= kElfMap ? kElfMap : std::min(def_size, kSamples);
  table.iproute2 = known == kElfMap;
  const auto field = [&](const ElfSymbol* s, std::uint64_t at) -> std::uint32_t {
    return at + 4 <= known ? u32_at(sec->bytes, static_cast<std::size_t>(s->value + at)) : 0;
  };
  struct Extra {
    std::uint32_t id = 0, inner_id = 0, inner_idx = 0, inner_index = 0;
  };
  std::vector<Extra> extras;
  const std::size_t first = table.maps.size();
  for (const ElfSymbol* s : syms) {
    if (s->value % def_size != 0 || s->value + def_size > sec->size) {
      return make_error(Errc::kInvalid, "section 'maps': map '{}' at offset {} is not on a definition", s->name, s->value);
    }
    const auto off = static_cast<std::size_t>(s->value);
    for (std::size_t i = known; i < def_size; ++i) {
      if (sec->bytes[off + i] != 0) {
        return make_error(Errc::kNotSupported,
                          "section 'maps': map '{}': definitions are {} bytes and byte {} is not zero; bpfvm knows "
                          "struct bpf_map_def (20), samples/bpf's (28) and iproute2's struct bpf_elf_map (36)",
                          s->name, def_size, i);
      }
    }
    MapSpec spec;
    spec.name = sanitized_map_name(s->name);
    spec.symbol = s->name;
    spec.origin = MapOrigin::kLegacy;
    spec.type = field(s, 0);
    spec.key_size = field(s, 4);
    spec.value_size = field(s, 8);
    spec.max_entries = field(s, 12);
    spec.map_flags = field(s, 16);
    Extra extra;
    const bool map_in_map = spec.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || spec.type == BPF_MAP_TYPE_HASH_OF_MAPS;
    if (known == kElfMap) {
      extra.id = field(s, 20);
      spec.pinning = field(s, 24);
      extra.inner_id = field(s, 28);
      extra.inner_idx = field(s, 32);
    } else if (known > kMapDef) {
      // samples/bpf: a map-in-map names its template by index; iproute2 4.11: id, then pinning.
      if (map_in_map) extra.inner_index = field(s, 20) + 1;
      if (!(spec.map_flags & BPF_F_NUMA_NODE)) spec.pinning = field(s, 24);
    }
    spec.pin_by_name = spec.pinning == kPinObjectNs || spec.pinning == kPinGlobalNs;
    if (extra.id) table.by_elf_id[extra.id] = table.maps.size();
    table.by_symbol[{sec->index, s->value}] = table.maps.size();
    table.maps.push_back(std::move(spec));
    extras.push_back(extra);
  }
  // Map-in-map templates and initial slots, once every definition is read.
  const auto by_id = [&](std::uint32_t id) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < extras.size(); ++i) {
      if (extras[i].id == id) return first + i;
    }
    return std::nullopt;
  };
  for (std::size_t i = 0; i < extras.size(); ++i) {
    MapSpec& m = table.maps[first + i];
    const bool map_in_map = m.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || m.type == BPF_MAP_TYPE_HASH_OF_MAPS;
    std::optional<std::size_t> inner;
    if (map_in_map && extras[i].inner_index) {
      if (extras[i].inner_index - 1 >= extras.size()) {
        return make_error(Errc::kInvalid, "section 'maps': map '{}': inner map index {} is beyond the {} maps", m.name,
                          extras[i].inner_index - 1, extras.size());
      }
      inner = first + extras[i].inner_index - 1;
    } else if (map_in_map && extras[i].inner_id) {
      inner = by_id(extras[i].inner_id);
      if (!inner) {
        return make_error(Errc::kInvalid, "section 'maps': map '{}': no map has the inner map id {}", m.name,
                          extras[i].inner_id);
      }
    } else if (!map_in_map && extras[i].inner_id) {
      // iproute2: this map goes into slot inner_idx of the map-in-map whose id is inner_id.
      const auto outer = by_id(extras[i].inner_id);
      if (!outer) {
        return make_error(Errc::kInvalid, "section 'maps': map '{}': no map has the outer map id {}", m.name,
                          extras[i].inner_id);
      }
      table.maps[*outer].initial_slots.emplace_back(extras[i].inner_idx, first + i);
    }
    if (inner) {
      if (*inner == first + i) {
        return make_error(Errc::kInvalid, "section 'maps': map '{}' is its own inner map", m.name);
      }
      // samples/bpf made maps-in-maps with bpf_create_map_in_map(), whose values are 4-byte fds
      // whatever the definition says.
      if (m.value_size == 0) m.value_size = 4;
      auto templ = std::make_shared<MapSpec>(table.maps[*inner]);
      templ->inner.reset();
      templ->initial_slots.clear();
      m.inner = std::move(templ);
    } else if (map_in_map) {
      return make_error(Errc::kInvalid, "section 'maps': map '{}' is a map-in-map without an inner map definition",
                        m.name);
    }
  }
  return {};
}

Result<void> read_btf_maps(const ElfFile& elf, const Btf* btf, MapTable& table) {
  const ElfSection* sec = elf.find_section(".maps");
  if (!sec) return {};
  if (!btf) return make_error(Errc::kInvalid, "section '.maps' needs BTF, and the object has no .BTF section");
  const struct btf* b = btf->get();
  const int datasec_id = btf__find_by_name_kind(b, ".maps", BTF_KIND_DATASEC);
  if (datasec_id <= 0) return make_error(Errc::kInvalid, "section '.maps': BTF has no DATASEC '.maps'");
  const struct btf_type* datasec = btf__type_by_id(b, static_cast<std::uint32_t>(datasec_id));
  const struct btf_var_secinfo* vars = btf_var_secinfos(datasec);

  struct Pending {
    std::size_t map;
    std::uint64_t start, end, values_offset;
  };
  std::vector<Pending> with_values;
  for (unsigned i = 0; i < btf_vlen(datasec); ++i) {
    const struct btf_type* var = btf__type_by_id(b, vars[i].type);
    if (!var || !btf_is_var(var)) return make_error(Errc::kInvalid, "section '.maps': entry {} is not a variable", i);
    const std::string name(btf->string_at(var->name_off));
    const ElfSymbol* sym = nullptr;
    for (const ElfSymbol& s : elf.symbols()) {
      if (s.section == sec->index && s.name == name && s.type != STT_SECTION) sym = &s;
    }
    if (!sym) return make_error(Errc::kInvalid, "section '.maps': map '{}' has no symbol", name);
    const struct btf_type* def = skip_mods(b, var->type);
    if (!def || !btf_is_struct(def)) return make_error(Errc::kInvalid, "section '.maps': map '{}' is not a struct", name);
    ParsedDef parsed = BPFVM_TRY_CTX(parse_map_def(b, def, false), "section '.maps': map '{}'", name);
    parsed.spec.name = sanitized_map_name(name);
    parsed.spec.symbol = name;
    parsed.spec.origin = MapOrigin::kBtf;
    if (parsed.has_values) {
      // The variable is larger than its struct type when `values` has initialisers: use the symbol size.
      const std::uint64_t size = std::max<std::uint64_t>(def->size, sym->size);
      with_values.push_back({table.maps.size(), sym->value, sym->value + size, parsed.values_offset});
    }
    table.by_symbol[{sec->index, sym->value}] = table.maps.size();
    table.maps.push_back(std::move(parsed.spec));
  }

  // Initial slots of map-in-map (and program array) definitions: relocations inside `values`.
  for (const ElfRelocation& rel : elf.relocations_for(sec->index)) {
    const ElfSymbol& target = elf.symbols()[rel.symbol];
    auto owner = std::find_if(with_values.begin(), with_values.end(),
                              [&](const Pending& p) { return rel.offset >= p.start && rel.offset < p.end; });
    if (owner == with_values.end()) {
      return make_error(Errc::kInvalid, "section '.maps': relocation at offset {} (symbol '{}') is not in a 'values' array",
                        rel.offset, target.name);
    }
    MapSpec& outer = table.maps[owner->map];
    const std::uint64_t in_def = rel.offset - owner->start;
    if (in_def < owner->values_offset || (in_def - owner->values_offset) % 8 != 0) {
      return make_error(Errc::kInvalid, "section '.maps': map '{}': relocation at offset {} is not on a slot", outer.name,
                        rel.offset);
    }
    const std::uint64_t slot = (in_def - owner->values_offset) / 8;
    if (slot >= outer.max_entries) {
      return make_error(Errc::kInvalid, "section '.maps': map '{}': slot {} is beyond max_entries {}", outer.name, slot,
                        outer.max_entries);
    }
    if (outer.type == BPF_MAP_TYPE_PROG_ARRAY) {
      // libbpf: a slot names an entry function (a global STT_FUNC) of a program section.
      if (target.type != STT_FUNC || target.section == sec->index) {
        return make_error(Errc::kInvalid, "section '.maps': map '{}': slot {} names '{}', which is not a program",
                          outer.name, slot, target.name);
      }
      outer.initial_programs.emplace_back(static_cast<std::uint32_t>(slot), target.name);
      continue;
    }
    auto inner = table.by_symbol.find({target.section, target.value});
    if (target.section != sec->index || inner == table.by_symbol.end()) {
      return make_error(Errc::kInvalid, "section '.maps': map '{}': slot {} names '{}', which is not a map", outer.name,
                        slot, target.name);
    }
    outer.initial_slots.emplace_back(static_cast<std::uint32_t>(slot), inner->second);
  }
  return {};
}

Result<void> read_data_maps(const ElfFile& elf, const Btf* btf, std::string_view object_name, MapTable& table) {
  for (const ElfSection& s : elf.sections()) {
    if (!is_data_section(s) || s.size == 0) continue;
    if (s.size > (1u << 30)) return make_error(Errc::kTooBig, "section '{}' is {} bytes", s.name, s.size);
    MapSpec spec;
    // libbpf's internal map names: "<object name prefix><section>" for .data/.rodata/.bss, the section
    // name alone for custom sections (".data.foo", ".rodata.str1.1"), 15 characters at most.
    const bool custom = s.name.find('.', 1) != std::string::npos;
    const std::size_t suffix = std::max<std::size_t>(7, s.name.size());
    const std::size_t prefix = custom ? 0 : std::min<std::size_t>(BPF_OBJ_NAME_LEN - suffix - 1, object_name.size());
    spec.name = sanitized_map_name(std::string(object_name.substr(0, prefix)) + s.name);
    spec.symbol = s.name;
    spec.type = BPF_MAP_TYPE_ARRAY;
    spec.key_size = 4;
    spec.value_size = static_cast<std::uint32_t>(s.size);
    spec.max_entries = 1;
    spec.map_flags = BPF_F_MMAPABLE;
    if (s.name.starts_with(".rodata")) {
      spec.origin = MapOrigin::kRodata;
      spec.map_flags |= BPF_F_RDONLY_PROG;
    } else if (s.name.starts_with(".bss")) {
      spec.origin = MapOrigin::kBss;
    } else {
      spec.origin = MapOrigin::kData;
    }
    if (s.type != SHT_NOBITS) spec.initial_value = s.bytes;
    if (btf) {
      const int id = btf__find_by_name_kind(btf->get(), s.name.c_str(), BTF_KIND_DATASEC);
      if (id > 0) spec.btf_value_type_id = static_cast<std::uint32_t>(id);
    }
    table.by_data_section[s.index] = table.maps.size();
    table.maps.push_back(std::move(spec));
  }
  return {};
}

Result<void> read_kconfig_externs(const Btf* btf, std::string_view object_name, MapTable& table,
                                  std::vector<KconfigExtern>& out, std::size_t& map_index) {
  if (!btf) return {};
  const struct btf* b = btf->get();
  const int datasec_id = btf__find_by_name_kind(b, ".kconfig", BTF_KIND_DATASEC);
  if (datasec_id <= 0) return {};
  const struct btf_type* datasec = btf__type_by_id(b, static_cast<std::uint32_t>(datasec_id));
  const struct btf_var_secinfo* vars = btf_var_secinfos(datasec);
  std::uint32_t end = 0;
  for (unsigned i = 0; i < btf_vlen(datasec); ++i) {
    const struct btf_type* var = btf__type_by_id(b, vars[i].type);
    if (!var || !btf_is_var(var)) return make_error(Errc::kInvalid, "section '.kconfig': entry {} is not a variable", i);
    KconfigExtern e;
    e.name = std::string(btf->string_at(var->name_off));
    std::uint32_t type_id = 0;
    const struct btf_type* t = skip_mods(b, var->type, &type_id);
    const long long size = btf__resolve_size(b, type_id);
    const int align = btf__align_of(b, type_id);
    if (!t || size <= 0 || align <= 0) return make_error(Errc::kInvalid, "kconfig extern '{}' has no size", e.name);
    e.size = static_cast<std::uint32_t>(size);
    if (btf_is_int(t) && (btf_int_encoding(t) & BTF_INT_BOOL)) {
      e.kind = KconfigExtern::Kind::kBool;
    } else if (btf_is_enum(t) && std::string_view(btf->string_at(t->name_off)) == "libbpf_tristate") {
      e.kind = KconfigExtern::Kind::kTristate;
    } else if (btf_is_int(t) && btf_int_bits(t) == 8 && (btf_int_encoding(t) & BTF_INT_CHAR)) {
      e.kind = KconfigExtern::Kind::kChars;  // a single char: CONFIG_X=y as 'y'
    } else if (btf_is_int(t)) {
      e.kind = KconfigExtern::Kind::kInt;
      e.is_signed = (btf_int_encoding(t) & BTF_INT_SIGNED) != 0;
    } else if (btf_is_array(t)) {
      const struct btf_type* elem = skip_mods(b, btf_array(t)->type);
      if (elem && btf_is_int(elem) && btf_int_bits(elem) == 8) e.kind = KconfigExtern::Kind::kChars;
    }
    if (e.kind == KconfigExtern::Kind::kOther) {
      return make_error(Errc::kNotSupported, "kconfig extern '{}': its type is not a bool, tristate, integer or char array",
                        e.name);
    }
    end = (end + static_cast<std::uint32_t>(align) - 1) / static_cast<std::uint32_t>(align) * static_cast<std::uint32_t>(align);
    e.offset = end;
    end += e.size;
    out.push_back(std::move(e));
  }
  if (out.empty()) return {};
  MapSpec spec;
  const std::size_t prefix = std::min<std::size_t>(BPF_OBJ_NAME_LEN - 8 - 1, object_name.size());
  spec.name = sanitized_map_name(std::string(object_name.substr(0, prefix)) + ".kconfig");
  spec.symbol = ".kconfig";
  spec.origin = MapOrigin::kRodata;  // written once for the target, then frozen
  spec.type = BPF_MAP_TYPE_ARRAY;
  spec.key_size = 4;
  spec.value_size = (end + 7) / 8 * 8;
  spec.max_entries = 1;
  spec.map_flags = BPF_F_MMAPABLE | BPF_F_RDONLY_PROG;
  spec.initial_value.assign(spec.value_size, 0);
  map_index = table.maps.size();
  for (const KconfigExtern& e : out) table.kconfig_by_name[e.name] = {map_index, e.offset};
  table.maps.push_back(std::move(spec));
  return {};
}

}  // namespace bpfvm::obj::detail
