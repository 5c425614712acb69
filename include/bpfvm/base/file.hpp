// Whole-file reads and writes: the only place bpfvm touches the file system directly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

// Reads a whole regular file. Errors name the path and carry errno's code.
Result<std::vector<std::uint8_t>> read_file(const std::string& path);
Result<std::string> read_text_file(const std::string& path);

// Writes a whole file through a temporary and a rename, so a crash never leaves a half-written file.
Result<void> write_file(const std::string& path, std::span<const std::uint8_t> data);

}  // namespace bpfvm::os
