// Shared memory: a file mapped MAP_SHARED, so that every process that maps the same path sees the same
// bytes. Maps keep their storage in one, which makes a pinned map one object for every process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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

  // The same three, with the bytes from `mirror_from` to the end mapped a second time right after the
  // end: data()[size() + i] is data()[mirror_from + i]. A ring buffer's data pages are mapped this way
  // so that a record that wraps around reads as one piece (the kernel's BPF ring buffer layout).
  static Result<SharedMemory> create_mirrored(const std::string& path, std::size_t size, std::size_t mirror_from);
  static Result<SharedMemory> open_mirrored(const std::string& path, std::size_t mirror_from);
  static Result<SharedMemory> anonymous_mirrored(std::size_t size, std::size_t mirror_from);

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
  static Result<SharedMemory> map_file(int fd, std::size_t size, std::size_t mirror_from, const std::string& path);

  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // size_ plus the mirror
  std::string path_;
};

// A name no other process will pick: "<prefix><pid>-<counter>-<random>".
std::string unique_name(std::string_view prefix);
// The files of `dir` that unique_name(prefix) named for a process that is gone (it crashed, or was
// killed, before it removed them), and for process `also` (one that is ending), when not 0.
std::vector<std::string> orphaned_names(const std::string& dir, std::string_view prefix, int also = 0);
// Removes the file at `path` (false when it could not).
bool remove_file(const std::string& path);

}  // namespace bpfvm::os
