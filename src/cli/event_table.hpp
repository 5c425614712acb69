// Private to src/cli: records from a perf or ring buffer as rows of a table, decoded through BTF: a
// TIME(s) column (seconds since tracing began), then one column per member of the record's struct,
// headed by the member's name in capitals. The struct is, in this order: the one BPFVM_RECORD names;
// the one the program keeps the record in (a local variable or parameter holding a struct of the
// record's size, found in the object's DWARF: clang leaves such types out of .BTF); the struct of the
// object's BTF named `event` (the libbpf-tools convention); the one struct of the record's size.
// Without one, rows are hex.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/btf_value.hpp"

namespace bpfvm::cli {

class EventTable {
 public:
  // `object`: the object file, for its DWARF ("" for none).
  EventTable(const obj::Btf* btf, std::string object, std::FILE* out);
  void print(std::span<const std::uint8_t> record);
  void print_lost(std::uint64_t count);

 private:
  struct Column {
    std::string header;
    std::uint32_t type_id, offset, size;
    bool syscall_name, left;
    std::size_t width;
    std::optional<obj::BtfCellFormat> format;  // how its cells are written, decided with the layout
  };
  // Appends " text" to `row`, padded to the column's width (the last column is not padded).
  static void append_cell(std::string& row, const Column& c, std::string_view text, bool last);
  bool choose_layout(std::size_t record_size);

  const obj::Btf* btf_;
  std::string object_;
  std::optional<obj::Btf> dwarf_btf_;  // the record's type, from DWARF, when btf_ points here
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_;
  std::uint32_t struct_id_ = 0;
  bool decided_ = false, header_printed_ = false;
  std::vector<Column> columns_;
  std::string row_, cell_;  // (kept: a row per record allocates nothing once they have grown)
};

// A member's type name is `bpfvm_syscall_nr_t` (include/bpf/bpfvm_trace.h): its values print as names.
bool is_syscall_nr_type(const obj::Btf& btf, std::uint32_t type_id);
std::string syscall_name_or_number(std::uint64_t nr);

}  // namespace bpfvm::cli
