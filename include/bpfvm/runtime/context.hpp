// Program contexts: what a program of each type receives in r1, with the kernel's user-visible layouts
// (struct __sk_buff, struct xdp_md, struct pt_regs, ...), and the load-time rewrite of context accesses.
//
// bpfvm's own context object for a type starts with the user-visible struct, so plain fields are read
// and written in place; the pointer fields (skb->data, xdp_md->data, ...) are u32 in the user-visible
// struct and 64-bit pointers after it, and their loads are rewritten into 64-bit loads from there, as
// the kernel's convert_ctx_access does. Accesses the kernel would refuse (a write to a read-only field,
// a load that straddles fields, a narrow load of a pointer) are refused at load time with EACCES.
#pragma once

#include <linux/bpf.h>
#include <linux/ptrace.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/verifier/platform.hpp"

namespace bpfvm::runtime {

// Behind struct __sk_buff (socket_filter, sched_cls, sched_act).
struct SkbContext {
  struct __sk_buff user;
  std::uint64_t data = 0, data_end = 0, data_meta = 0;
  // What `skb->sk` loads: the packet's socket. Outside test runs none (NULL); a test run's packet belongs
  // to a dummy socket, as in the kernel's bpf_prog_test_run_skb: `sock` below, in the UAPI layout
  // programs read (bpfvm has no struct sock to translate from).
  std::uint64_t sk = 0;
  struct bpf_sock sock {};
};

// Behind struct xdp_md. data_hard_start is the buffer's start (its headroom), for bpf_xdp_adjust_head.
struct XdpContext {
  struct xdp_md user;
  std::uint32_t pad = 0;
  std::uint64_t data = 0, data_end = 0, data_meta = 0;
  std::uint64_t data_hard_start = 0;
};

// The contexts of tracing types are the raw structs: a tracepoint's record, u64 args[] for
// raw_tracepoint, struct pt_regs (x86-64) for kprobe/uprobe, struct bpf_perf_event_data for perf_event.
// Their largest sizes:
inline constexpr std::size_t kTracepointRecordMax = 8192;  // PERF_MAX_TRACE_SIZE
inline constexpr std::size_t kRawTracepointArgsMax = 12 * 8;  // MAX_BPF_FUNC_ARGS u64s
// A syscall program's context is the caller's ctx_in, any bytes below U16_MAX.
inline constexpr std::size_t kSyscallContextMax = 65535;

// The size of the context object bpfvm passes to a program of this type, and of the user-visible
// struct (what ctx_in / ctx_out hold). 0 for types bpfvm does not run.
std::size_t context_size(std::uint32_t prog_type);
std::size_t user_context_size(std::uint32_t prog_type);
// Whether bpfvm runs programs of this type and attach type: those with a context above, and tracing
// programs whose context is their target's arguments (fentry/fexit on a kernel function, tp_btf on a
// raw tracepoint: u64 args[], at most kRawTracepointArgsMax bytes). Which targets have events in user
// space is the attach layer's to say.
bool runs_in_user_space(std::uint32_t prog_type, std::uint32_t expected_attach_type);

// What the verifier learns of a context access: refused (and why), a number, or a packet pointer. The
// types bpfvm runs are described here; the others (cgroup, socket, lwt, flow dissector, sysctl, sockopt,
// sk_lookup, netfilter...) by what the kernel answered scripts/probe_contexts, per expected attach type.
verifier::CtxField context_field(std::uint32_t prog_type, std::int32_t off, std::uint32_t size, bool write,
                                 std::uint32_t expected_attach_type = 0);

// Whether bpfvm verifies and loads programs of this type without running them (it knows the kernel's
// context rules for it, and the type attaches to kernel objects: cgroups, sockets, routes...).
bool verified_only_type(std::uint32_t prog_type);

// The range a program's return value must lie in (check_return_code), or nullopt when any is accepted.
std::optional<std::pair<std::int64_t, std::int64_t>> return_range(std::uint32_t prog_type,
                                                                  std::uint32_t expected_attach_type = 0);

// Checks every context access of `insns` against the type's rules and rewrites those of pointer fields.
// Errors name the instruction, as the kernel's "invalid bpf_context access off=.. size=..".
Result<void> rewrite_context_accesses(std::uint32_t prog_type, std::vector<isa::RawInsn>& insns);

}  // namespace bpfvm::runtime
