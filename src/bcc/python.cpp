#include "bpfvm/bcc/python.hpp"

#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "bpfvm/base/file.hpp"

namespace bpfvm::bcc {

namespace {
constexpr const char* kDebianPackage = "/usr/lib/python3/dist-packages/bcc";
}  // namespace

std::optional<std::string> python_package_path() {
  if (!os::is_directory(kDebianPackage)) return std::nullopt;
  auto dir = os::user_cache_directory("python");
  if (!dir) return std::nullopt;
  const std::string link = *dir + "/bcc";
  char target[4096];
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n < 0 || std::string_view(target, static_cast<std::size_t>(n)) != kDebianPackage) {
    const std::string tmp = link + ".new-" + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    if (::symlink(kDebianPackage, tmp.c_str()) != 0 || ::rename(tmp.c_str(), link.c_str()) != 0) {
      ::unlink(tmp.c_str());
      return std::nullopt;
    }
  }
  return *dir;
}

std::string with_python_path(const char* current, const std::string& folder) {
  if (!current || !*current) return folder;
  std::string_view rest(current);
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    if (rest.substr(0, colon) == folder) return current;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return std::string(current) + ":" + folder;
}

}  // namespace bpfvm::bcc
