#include "bpfvm/base/process.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace bpfvm::os {

Result<int> run_process(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error(Errc::kInvalid, "no program to run");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (const int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); err != 0) {
    return make_error(Errc::kNotFound, "cannot run '{}': {}", argv[0], std::strerror(err));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return make_error(Errc::kIo, "waiting for '{}': {}", argv[0], std::strerror(errno));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result<TempDirectory> TempDirectory::create(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/{}XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  if (!::mkdtemp(pattern.data())) {
    return make_error(Errc::kIo, "cannot create a temporary directory '{}': {}", pattern, std::strerror(errno));
  }
  return TempDirectory(pattern);
}

TempDirectory::~TempDirectory() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace bpfvm::os
