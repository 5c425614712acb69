#include "seccomp_filter.hpp"

#include <linux/audit.h>
#include <linux/seccomp.h>

#include <cstddef>

namespace bpfvm::attach {

std::vector<sock_filter> seccomp_filter(const SyscallSelection& selection) {
  std::set<int> nrs = selection.enter;
  nrs.insert(selection.exit.begin(), selection.exit.end());
  constexpr std::size_t kMaxJump = 255;  // a classic BPF conditional jump reaches 255 instructions
  std::vector<sock_filter> f;
  if (selection.all_enter || selection.all_exit || nrs.size() >= kMaxJump) {
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
    return f;
  }
  // Other ABIs (x32's numbers have bit 30 set and fail every comparison; i386 is another arch) run
  // untraced.
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  std::size_t left = nrs.size();
  for (int nr : nrs) {
    // Equal: jump over the remaining comparisons and the ALLOW to the TRACE.
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), static_cast<unsigned char>(left), 0));
    --left;
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
  return f;
}

}  // namespace bpfvm::attach
