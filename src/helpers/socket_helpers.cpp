// Socket helpers (net/core/filter.c): bpf_sk_lookup_tcp (84), bpf_sk_lookup_udp (85),
// bpf_sk_release (86), bpf_sk_fullsock (95), bpf_tcp_sock (96), bpf_get_listener_sock (98),
// bpf_skc_lookup_tcp (99), bpf_tcp_check_syncookie (100), bpf_tcp_gen_syncookie (110),
// bpf_sk_assign (124), bpf_get_socket_cookie (46), bpf_get_cgroup_classid (17).
//
// The programs bpfvm runs that may call them (tc and XDP) run in test runs, on packets, not on the
// host's network stack: no socket matches a lookup, so the lookups find none (NULL, as the kernel
// answers for a tuple nobody listens on). The one socket such a program can hold is its packet's own,
// the dummy socket of a test run (runtime::SkbContext::sock, as the kernel's bpf_prog_test_run_skb
// makes it): closed, of no protocol, laid out as the UAPI struct bpf_sock. The verifier passes these
// helpers nothing else.
#include <linux/bpf.h>
#include <netinet/in.h>

#include <cerrno>

#include "bpfvm/base/process.hpp"
#include "bpfvm/helpers/helpers.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

constexpr std::uint32_t kTcpTimeWait = 6, kTcpListen = 10, kTcpNewSynRecv = 12;  // include/net/tcp_states.h

std::uint64_t err(int e) { return static_cast<std::uint64_t>(-static_cast<std::int64_t>(e)); }
const struct bpf_sock& sock(std::uint64_t sk) { return *reinterpret_cast<const struct bpf_sock*>(sk); }

std::uint64_t lookup(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return 0;  // NULL: no socket listens here
}

// bpf_sk_release: the lookups never return a socket, so there is nothing to give back; 0.
std::uint64_t sk_release(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return 0;
}

// bpf_sk_fullsock: the socket itself unless it is a time-wait or request socket (sk_fullsock()).
std::uint64_t sk_fullsock(std::uint64_t sk, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  const std::uint32_t state = sock(sk).state;
  return state == kTcpTimeWait || state == kTcpNewSynRecv ? 0 : sk;
}

// bpf_tcp_sock: a full TCP socket's TCP fields. No TCP socket exists here (the packet's own has no
// protocol): NULL for every other socket, as in the kernel.
std::uint64_t tcp_sock(std::uint64_t sk, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  (void)sk;
  return 0;
}

// bpf_get_listener_sock: the socket when it listens (a TCP listener), else NULL; none listens here.
std::uint64_t get_listener_sock(std::uint64_t sk, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext*) {
  const struct bpf_sock& s = sock(sk);
  return s.protocol == IPPROTO_TCP && s.state == kTcpListen ? sk : 0;
}

// The syncookie helpers need a listening TCP socket: -EINVAL for any other (the kernel's first checks).
std::uint64_t syncookie(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return err(EINVAL);
}

// bpf_sk_assign (tc): -EINVAL for flags or no socket, then -EOPNOTSUPP: a test run's packet is not at
// tc ingress (skb_at_tc_ingress), which is where bpfvm runs tc programs.
std::uint64_t sk_assign(std::uint64_t, std::uint64_t sk, std::uint64_t flags, std::uint64_t, std::uint64_t,
                        CallContext*) {
  if (sk == 0 || flags != 0) return err(EINVAL);
  return err(EOPNOTSUPP);
}

// bpf_get_socket_cookie (46) on a packet: its socket's cookie (sock_gen_cookie), 0 when it has none. A
// test run's packet has the run's dummy socket, whose identity bpfvm already draws for the run (the
// owner of its sk_storage, a number no real socket's cookie has): the same value on every call of the
// run, tail calls included, and another for the next run, as the kernel's dummy socket gets a cookie of
// its own.
std::uint64_t get_socket_cookie(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  return env.test_socket != 0 ? env.test_socket_owner : 0;
}

// bpf_get_cgroup_classid (17): the class id of net_cls (cgroup v1) for the calling task; a test run
// runs in process context, where the kernel's task_get_classid reads the task's, not its socket's.
std::uint64_t get_cgroup_classid(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                 CallContext* ctx) {
  return os::net_cls_classid_of_task(env_of(ctx).task.pid);
}

}  // namespace

void install_socket_helpers(Registry& table) {
  table.set(BPF_FUNC_get_socket_cookie, get_socket_cookie);
  table.set(BPF_FUNC_get_cgroup_classid, get_cgroup_classid);
  table.set(BPF_FUNC_sk_lookup_tcp, lookup);
  table.set(BPF_FUNC_sk_lookup_udp, lookup);
  table.set(BPF_FUNC_skc_lookup_tcp, lookup);
  table.set(BPF_FUNC_sk_release, sk_release);
  table.set(BPF_FUNC_sk_fullsock, sk_fullsock);
  table.set(BPF_FUNC_tcp_sock, tcp_sock);
  table.set(BPF_FUNC_get_listener_sock, get_listener_sock);
  table.set(BPF_FUNC_tcp_check_syncookie, syncookie);
  table.set(BPF_FUNC_tcp_gen_syncookie, syncookie);
  table.set(BPF_FUNC_sk_assign, sk_assign);
}

}  // namespace bpfvm::helpers
