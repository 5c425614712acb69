// Memory a program may touch, for the interpreter's checked mode.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

namespace bpfvm::vm {

struct MemoryRegion {
  std::uint64_t start = 0;
  std::uint64_t size = 0;
  bool writable = true;
  std::string_view name;  // "ctx", "packet", "map value": used in fault messages

  bool contains(std::uint64_t addr, std::uint64_t len) const {
    return addr >= start && len <= size && addr - start <= size - len;
  }
  template <typename T>
  static MemoryRegion of(T* p, std::uint64_t bytes, std::string_view name) {
    return {reinterpret_cast<std::uint64_t>(p), bytes, !std::is_const_v<T>, name};
  }
};

}  // namespace bpfvm::vm
