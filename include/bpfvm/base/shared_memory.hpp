// Shared memory: a file mapped MAP_SHARED, so that every process that maps the same path sees the same
// bytes. Maps keep their storage in one, which makes a pinned map one object for every process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

class SharedMemory {
 public:
  // Creates a new file of `size` zero bytes at `path` (EEXIST if it exists) and maps it.
  static Result<SharedMemory> create(const std::string& path, std::size_t size);
  // Maps an existing file whole.
  static Result<SharedMemory> open(const std::string& path);
  // Zeroed memory private to this process (no file): the same interface for objects never shared.
  static Result<SharedMemory> anonymous(std::size_t size);

  SharedMemory() = default;
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Removes the file; the mapping stays valid until this object goes.
  void unlink() const;

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

// A name no other process will pick: "<prefix><pid>-<counter>-<random>".
std::string unique_name(std::string_view prefix);

}  // namespace bpfvm::os
