// Values laid out by a BTF type, as bpftool prints them with BTF (its btf_dumper): integers as numbers
// (wider than 64 bits, and pointers, as hex strings), char arrays as strings, other arrays as lists,
// structs and unions as objects by member name, enums by enumerator name (the number when none
// matches), bitfields by their bits.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bpfvm/obj/btf.hpp"

namespace bpfvm::obj {

nlohmann::ordered_json btf_value(const Btf& btf, std::uint32_t type_id, std::span<const std::uint8_t> data);

// A scalar or string cell of a table: the value as btf_value gives it, strings without quotes.
std::string btf_cell(const Btf& btf, std::uint32_t type_id, std::span<const std::uint8_t> data);

// btf_cell for one type, decided once: a table prints a cell per member of every record (`bpfvm trace`
// at tens of thousands of records a second), which btf_cell would build as JSON each time. Integers
// (up to 64 bits), booleans, pointers, char arrays and enums are written directly; other types go
// through btf_cell. The text is btf_cell's.
class BtfCellFormat {
 public:
  BtfCellFormat(const Btf& btf, std::uint32_t type_id);
  // Appends the cell of `data` (the value's bytes) to `out`.
  void append(std::span<const std::uint8_t> data, std::string& out) const;

 private:
  enum class Kind : std::uint8_t { kSigned, kUnsigned, kBool, kPointer, kChars, kEnum, kOther };
  const Btf* btf_;
  std::uint32_t type_id_;
  Kind kind_ = Kind::kOther;
  std::uint32_t bits_ = 0, bit_offset_ = 0, size_ = 0;
  std::vector<std::pair<std::uint64_t, std::string>> enumerators_;
  bool enum_signed_ = false;
};

// The type after typedefs and modifiers (const, volatile, restrict, type tags).
std::uint32_t btf_skip_qualifiers(const Btf& btf, std::uint32_t type_id);
// The size of a type in bytes; -1 when it has none.
std::int64_t btf_size(const Btf& btf, std::uint32_t type_id);

// A struct of this name, or (with an empty name) the one struct of this size: 0 when there is none or
// several.
std::uint32_t btf_find_struct(const Btf& btf, std::string_view name, std::int64_t size = -1);

}  // namespace bpfvm::obj
