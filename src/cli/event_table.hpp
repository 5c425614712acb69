// Private to src/cli: records from a perf or ring buffer as rows of a table, decoded through the
// object's BTF: a TIME(s) column (seconds since tracing began), then one column per member of the
// record's struct, headed by the member's name in capitals. The struct is the one named `event` (the
// libbpf-tools convention), else the one struct of the record's size; without one, rows are hex.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/obj/btf.hpp"

namespace bpfvm::cli {

class EventTable {
 public:
  EventTable(const obj::Btf* btf, std::FILE* out);
  void print(std::span<const std::uint8_t> record);
  void print_lost(std::uint64_t count);

 private:
  struct Column {
    std::string header;
    std::uint32_t type_id, offset, size;
    bool syscall_name, left;
    std::size_t width;
  };
  bool choose_layout(std::size_t record_size);

  const obj::Btf* btf_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_;
  std::uint32_t struct_id_ = 0;
  bool decided_ = false, header_printed_ = false;
  std::vector<Column> columns_;
};

// A member's type name is `bpfvm_syscall_nr_t` (include/bpf/bpfvm_trace.h): its values print as names.
bool is_syscall_nr_type(const obj::Btf& btf, std::uint32_t type_id);
std::string syscall_name_or_number(std::uint64_t nr);

}  // namespace bpfvm::cli
