#include "bpfvm/base/executable_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace bpfvm::os {

Result<ExecutableMemory> ExecutableMemory::allocate(std::size_t size) {
  if (size == 0) return make_error(Errc::kInvalid, "no code to place");
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t mapped = (size + page - 1) / page * page;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return make_error(Errc::kNoMemory, "mmap of {} bytes for code failed: {}", mapped, std::strerror(errno));
  ExecutableMemory m;
  m.data_ = static_cast<std::uint8_t*>(p);
  m.size_ = size;
  m.mapped_ = mapped;
  return m;
}

Result<void> ExecutableMemory::seal() {
  if (!data_ || sealed_) return make_error(Errc::kInvalid, "the code memory is already sealed");
  if (mprotect(data_, mapped_, PROT_READ | PROT_EXEC) != 0) {
    return make_error(Errc::kPermission, "mprotect of the code to read+execute failed: {}", std::strerror(errno));
  }
  sealed_ = true;
  return {};
}

ExecutableMemory::ExecutableMemory(ExecutableMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)),
      sealed_(std::exchange(other.sealed_, false)) {}

ExecutableMemory& ExecutableMemory::operator=(ExecutableMemory&& other) noexcept {
  if (this != &other) {
    if (data_) munmap(data_, mapped_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
    sealed_ = std::exchange(other.sealed_, false);
  }
  return *this;
}

ExecutableMemory::~ExecutableMemory() {
  if (data_) munmap(data_, mapped_);
}

}  // namespace bpfvm::os
