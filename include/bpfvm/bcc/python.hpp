// BCC's Python package for any python3: Debian installs `bcc` (pure Python over libbcc through ctypes)
// for its own /usr/bin/python3 only; another interpreter on PATH (pyenv's, a venv's) imports it from a
// folder that holds nothing but a link to it, so none of Debian's other packages (built for another
// Python) shadow the interpreter's own.
#pragma once

#include <optional>
#include <string>

namespace bpfvm::bcc {

// The folder (in the user's cache) to add at the end of PYTHONPATH; nothing when Debian's package is
// not installed or the cache cannot be written.
std::optional<std::string> python_package_path();

// `current` (PYTHONPATH's value, or none) with `folder` appended unless it is already there.
std::string with_python_path(const char* current, const std::string& folder);

}  // namespace bpfvm::bcc
