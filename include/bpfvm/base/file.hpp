// Whole-file reads and writes and a few path operations: the only place bpfvm touches the file system.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

// The error of a failed system call `verb` on `path` ("create directory '/x': Permission denied"), with
// errno `err`'s code (ENOENT: kNotFound, EACCES: kAccess, ENOMEM/ENOSPC: kNoMemory...).
Error errno_error(std::string_view verb, const std::string& path, int err);

// Reads a whole regular file. Errors name the path and carry errno's code.
Result<std::vector<std::uint8_t>> read_file(const std::string& path);
Result<std::string> read_text_file(const std::string& path);

// Writes a whole file through a temporary and a rename, so a crash never leaves a half-written file.
Result<void> write_file(const std::string& path, std::span<const std::uint8_t> data);
// The same without waiting for the disk (fsync): readers never see a partial file, but a crash may lose
// it. For files that describe the running system (the object registry).
Result<void> replace_file(const std::string& path, std::span<const std::uint8_t> data);

// Creates a new file with these contents; EEXIST when the path exists. Never leaves a partial file.
Result<void> create_file(const std::string& path, std::span<const std::uint8_t> data);
// mkdir -p. New directories are private to their owner (0700, less what the umask takes).
Result<void> make_directories(const std::string& path);
// A directory only this user can use (tmux's check on its socket directory): created 0700 with its
// parents, or, when it exists, a real directory (not a link) owned by this user with no access for
// group or others; EACCES naming what is wrong otherwise. `tighten`: an existing directory of this
// user's that others may use is made private instead (for a directory only its owner could have made).
Result<void> make_private_directory(const std::string& path, bool tighten = false);
bool is_directory(const std::string& path);
bool exists(const std::string& path);
std::string current_directory();
// bpfvm's directory in the user's cache ($XDG_CACHE_HOME/bpfvm, else ~/.cache/bpfvm), created private
// with `leaf` under it (made once per input, by content hash); an error when neither is set or it
// cannot be made.
Result<std::string> user_cache_directory(const std::string& leaf);

}  // namespace bpfvm::os
