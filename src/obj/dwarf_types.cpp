#include "bpfvm/obj/dwarf_types.hpp"

#include <bpf/btf.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <libelf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

namespace bpfvm::obj {

namespace {

// A DIE's DW_AT_type, through typedefs and qualifiers when `strip` is set.
bool type_of(Dwarf_Die* die, Dwarf_Die* out) {
  Dwarf_Attribute attr;
  return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, out);
}

bool strip_qualifiers(Dwarf_Die* die) {
  for (int depth = 0; depth < 16; ++depth) {
    const int tag = dwarf_tag(die);
    if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
        tag != DW_TAG_restrict_type) {
      return true;
    }
    Dwarf_Die next;
    if (!type_of(die, &next)) return false;
    *die = next;
  }
  return false;
}

std::uint64_t udata(Dwarf_Die* die, unsigned name, std::uint64_t fallback = 0) {
  Dwarf_Attribute attr;
  Dwarf_Word v = 0;
  if (!dwarf_attr_integrate(die, name, &attr) || dwarf_formudata(&attr, &v) != 0) return fallback;
  return v;
}

std::string name_of(Dwarf_Die* die) {
  const char* n = dwarf_diename(die);
  return n ? n : "";
}

// Writes DWARF types as BTF with libbpf's btf__add_* (which appends a struct's fields right after it, so
// the types members need are written first). Pointers become void *: a record's pointers print as
// numbers, and no cycle can form.
class BtfWriter {
 public:
  BtfWriter() : btf_(btf__new_empty()) {}
  ~BtfWriter() { btf__free(btf_); }
  BtfWriter(const BtfWriter&) = delete;
  BtfWriter& operator=(const BtfWriter&) = delete;
  struct btf* get() const { return btf_; }

  Result<int> add(Dwarf_Die die, int depth = 0) {
    if (depth > 32) return make_error(Errc::kInvalid, "DWARF types nest too deeply");
    const Dwarf_Off off = dwarf_dieoffset(&die);
    if (auto it = done_.find(off); it != done_.end()) return it->second;
    const int id = BPFVM_TRY(make(die, depth));
    done_[off] = id;
    return id;
  }

 private:
  Result<int> check(int id, const char* what) {
    if (id < 0) return make_error(Errc::kInvalid, "cannot write {} as BTF: error {}", what, id);
    return id;
  }

  Result<int> index_type() {
    if (!index_type_) index_type_ = BPFVM_TRY(check(btf__add_int(btf_, "__ARRAY_SIZE_TYPE__", 4, 0), "an index"));
    return index_type_;
  }

  Result<int> make(Dwarf_Die die, int depth) {
    const std::string name = name_of(&die);
    switch (dwarf_tag(&die)) {
      case DW_TAG_base_type: {
        const auto size = static_cast<std::size_t>(udata(&die, DW_AT_byte_size, 1));
        const auto enc = udata(&die, DW_AT_encoding);
        if (enc == DW_ATE_float) return check(btf__add_float(btf_, name.c_str(), size), "a float");
        int e = 0;
        if (enc == DW_ATE_signed || enc == DW_ATE_signed_char) e = BTF_INT_SIGNED;
        if (enc == DW_ATE_boolean) e = BTF_INT_BOOL;
        return check(btf__add_int(btf_, name.c_str(), size, e), "an integer");
      }
      case DW_TAG_typedef: {
        Dwarf_Die target;
        const int to = type_of(&die, &target) ? BPFVM_TRY(add(target, depth + 1)) : 0;
        return check(btf__add_typedef(btf_, name.c_str(), to), "a typedef");
      }
      case DW_TAG_const_type:
      case DW_TAG_volatile_type:
      case DW_TAG_restrict_type: {
        Dwarf_Die target;
        return type_of(&die, &target) ? add(target, depth + 1) : Result<int>(0);
      }
      case DW_TAG_pointer_type: return check(btf__add_ptr(btf_, 0), "a pointer");
      case DW_TAG_array_type: {
        Dwarf_Die elem;
        if (!type_of(&die, &elem)) return make_error(Errc::kInvalid, "DWARF array without an element type");
        int id = BPFVM_TRY(add(elem, depth + 1));
        // Dimensions outermost first: the BTF array of the last one is built first.
        std::vector<std::uint32_t> dims;
        Dwarf_Die child;
        if (dwarf_child(&die, &child) == 0) {
          do {
            if (dwarf_tag(&child) != DW_TAG_subrange_type) continue;
            std::uint32_t n = static_cast<std::uint32_t>(udata(&child, DW_AT_count, 0));
            if (!n && dwarf_hasattr(&child, DW_AT_upper_bound)) n = static_cast<std::uint32_t>(udata(&child, DW_AT_upper_bound) + 1);
            dims.push_back(n);
          } while (dwarf_siblingof(&child, &child) == 0);
        }
        const int index = BPFVM_TRY(index_type());
        for (auto it = dims.rbegin(); it != dims.rend(); ++it) id = BPFVM_TRY(check(btf__add_array(btf_, index, id, *it), "an array"));
        return id;
      }
      case DW_TAG_enumeration_type: {
        const auto size = static_cast<std::size_t>(udata(&die, DW_AT_byte_size, 4));
        const int id = BPFVM_TRY(check(btf__add_enum(btf_, name.c_str(), static_cast<std::uint32_t>(size)), "an enum"));
        Dwarf_Die child;
        if (dwarf_child(&die, &child) == 0) {
          do {
            if (dwarf_tag(&child) != DW_TAG_enumerator) continue;
            Dwarf_Attribute attr;
            Dwarf_Sword v = 0;
            if (dwarf_attr(&child, DW_AT_const_value, &attr)) dwarf_formsdata(&attr, &v);
            BPFVM_TRY(check(btf__add_enum_value(btf_, name_of(&child).c_str(), v), "an enumerator"));
          } while (dwarf_siblingof(&child, &child) == 0);
        }
        return id;
      }
      case DW_TAG_structure_type:
      case DW_TAG_union_type: {
        struct Field {
          std::string name;
          int type;
          std::uint32_t bit_offset, bit_size;
        };
        std::vector<Field> fields;
        Dwarf_Die child;
        if (dwarf_child(&die, &child) == 0) {
          do {
            if (dwarf_tag(&child) != DW_TAG_member) continue;
            Dwarf_Die mtype;
            if (!type_of(&child, &mtype)) continue;
            Field f{name_of(&child), BPFVM_TRY(add(mtype, depth + 1)), 0, 0};
            f.bit_size = static_cast<std::uint32_t>(udata(&child, DW_AT_bit_size));
            if (dwarf_hasattr(&child, DW_AT_data_bit_offset)) {  // DWARF 4's way
              f.bit_offset = static_cast<std::uint32_t>(udata(&child, DW_AT_data_bit_offset));
            } else {
              f.bit_offset = static_cast<std::uint32_t>(udata(&child, DW_AT_data_member_location) * 8);
              // DWARF 2's, which clang still writes for BPF: the bit field's place counted from the most
              // significant bit of its storage unit (DW_AT_byte_size); BPF is little-endian here.
              if (f.bit_size && dwarf_hasattr(&child, DW_AT_bit_offset)) {
                const auto unit_bits = static_cast<std::uint32_t>(udata(&child, DW_AT_byte_size) * 8);
                const auto from_msb = static_cast<std::uint32_t>(udata(&child, DW_AT_bit_offset));
                f.bit_offset += unit_bits - from_msb - f.bit_size;
              }
            }
            fields.push_back(std::move(f));
          } while (dwarf_siblingof(&child, &child) == 0);
        }
        const auto size = static_cast<std::uint32_t>(udata(&die, DW_AT_byte_size));
        const bool is_union = dwarf_tag(&die) == DW_TAG_union_type;
        const int id = BPFVM_TRY(check(is_union ? btf__add_union(btf_, name.c_str(), size)
                                                : btf__add_struct(btf_, name.c_str(), size), "a struct"));
        for (const Field& f : fields) {
          BPFVM_TRY(check(btf__add_field(btf_, f.name.c_str(), f.type, f.bit_offset, f.bit_size), "a member"));
        }
        return id;
      }
      default:  // functions and anything else a record cannot hold by value: an opaque integer
        return check(btf__add_int(btf_, "long", 8, BTF_INT_SIGNED), "a value");
    }
  }

  struct btf* btf_;
  std::map<Dwarf_Off, int> done_;
  int index_type_ = 0;
};

}  // namespace

namespace {

// The search, on DWARF already opened (null: the file has none).
Result<std::optional<DwarfStruct>> find_in(Dwarf* dwarf, std::size_t min_size, std::size_t max_size) {
  if (!dwarf) return std::optional<DwarfStruct>();  // no DWARF (built without -g): nothing to find
  // Every struct a variable or parameter holds, by value or through a pointer, of a size that fits.
  std::map<Dwarf_Off, Dwarf_Die> found;
  std::function<void(Dwarf_Die*, int)> walk = [&](Dwarf_Die* die, int depth) {
    if (depth > 64) return;
    const int tag = dwarf_tag(die);
    if (tag == DW_TAG_variable || tag == DW_TAG_formal_parameter) {
      Dwarf_Die t;
      if (type_of(die, &t) && strip_qualifiers(&t)) {
        if (dwarf_tag(&t) == DW_TAG_pointer_type) {
          Dwarf_Die pointee;
          if (!type_of(&t, &pointee) || !strip_qualifiers(&pointee)) return;
          t = pointee;
        }
        const std::uint64_t size = udata(&t, DW_AT_byte_size);
        if (dwarf_tag(&t) == DW_TAG_structure_type && size >= min_size && size <= max_size) found[dwarf_dieoffset(&t)] = t;
      }
    }
    Dwarf_Die child;
    if (dwarf_child(die, &child) != 0) return;
    do walk(&child, depth + 1);
    while (dwarf_siblingof(&child, &child) == 0);
  };
  Dwarf_Off off = 0, next = 0;
  std::size_t header = 0;
  while (dwarf_nextcu(dwarf, off, &next, &header, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(dwarf, off + header, &cu)) walk(&cu, 0);
    off = next;
  }
  // Several structs of that size: the one named event, else the one whose name says event.
  std::optional<Dwarf_Die> chosen;
  if (found.size() == 1) chosen = found.begin()->second;
  for (int pass = 0; !chosen && pass < 2; ++pass) {
    int matches = 0;
    for (auto& [o, d] : found) {
      const std::string n = name_of(&d);
      if (pass == 0 ? n == "event" : n.find("event") != std::string::npos) {
        ++matches;
        chosen = d;
      }
    }
    if (matches > 1) chosen.reset();
  }
  if (!chosen) return std::optional<DwarfStruct>();
  BtfWriter writer;
  const int id = BPFVM_TRY(writer.add(*chosen));
  std::uint32_t size = 0;
  const void* raw = btf__raw_data(writer.get(), &size);
  if (!raw) return make_error(Errc::kNoMemory, "cannot write BTF");
  Btf btf = BPFVM_TRY(Btf::parse({static_cast<const std::uint8_t*>(raw), size}));
  return std::optional<DwarfStruct>(DwarfStruct{std::move(btf), static_cast<std::uint32_t>(id), name_of(&*chosen)});
}

}  // namespace

Result<std::optional<DwarfStruct>> find_dwarf_record_struct(const std::string& path, std::size_t min_size,
                                                            std::size_t max_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::kNotFound, "open '{}': {}", path, std::strerror(errno));
  Dwarf* dwarf = dwarf_begin(fd, DWARF_C_READ);
  auto result = find_in(dwarf, min_size, max_size);
  if (dwarf) dwarf_end(dwarf);
  ::close(fd);
  return result;
}

Result<std::optional<DwarfStruct>> find_dwarf_record_struct(std::span<const std::uint8_t> object,
                                                            std::size_t min_size, std::size_t max_size) {
  elf_version(EV_CURRENT);
  // libelf reads the image in place and does not write it.
  Elf* elf = elf_memory(const_cast<char*>(reinterpret_cast<const char*>(object.data())), object.size());
  if (!elf) return std::optional<DwarfStruct>();
  Dwarf* dwarf = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  auto result = find_in(dwarf, min_size, max_size);
  if (dwarf) dwarf_end(dwarf);
  elf_end(elf);
  return result;
}

}  // namespace bpfvm::obj
