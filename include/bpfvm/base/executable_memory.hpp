// Memory for generated machine code, kept W^X: pages are writable while the code is written into them,
// then executable and never writable again (mprotect), so no page is ever both.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

class ExecutableMemory {
 public:
  // Page-aligned, zeroed, readable and writable (not executable) memory for `size` bytes of code.
  static Result<ExecutableMemory> allocate(std::size_t size);

  // Ends the writable phase: read + execute from now on. Fails if the memory is already sealed.
  Result<void> seal();

  ExecutableMemory() = default;
  ExecutableMemory(ExecutableMemory&& other) noexcept;
  ExecutableMemory& operator=(ExecutableMemory&& other) noexcept;
  ExecutableMemory(const ExecutableMemory&) = delete;
  ExecutableMemory& operator=(const ExecutableMemory&) = delete;
  ~ExecutableMemory();

  // Writable only before seal(): writing afterwards faults.
  std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool sealed() const { return sealed_; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;     // what was asked for
  std::size_t mapped_ = 0;   // rounded up to pages
  bool sealed_ = false;
};

}  // namespace bpfvm::os
