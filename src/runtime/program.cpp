// Running a loaded program, and BPF_PROG_TEST_RUN for each program type with the kernel's semantics
// (net/bpf/test_run.c): how data_in becomes a packet, which context fields ctx_in may set, what
// data_out and ctx_out hold afterwards.
#include <bpf/btf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/runtime/kernel_tasks.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/maps/object_map.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/objects.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {

namespace {

constexpr std::uint32_t kXdpHeadroom = 256;        // XDP_PACKET_HEADROOM
constexpr std::uint32_t kXdpMaxLinear = 4096 - kXdpHeadroom - 320;  // a page minus headroom and skb_shared_info
constexpr std::uint32_t kSkbMaxData = 65535;
constexpr std::uint32_t kXdpMaxMeta = 32;

bool all_zero(std::span<const std::uint8_t> bytes, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to && i < bytes.size(); ++i) {
    if (bytes[i]) return false;
  }
  return true;
}

// A struct ctx_in may be shorter than the struct (the rest is zero) but not longer unless the extra
// bytes are zero (bpf_ctx_init).
template <typename T>
Result<T> user_ctx(std::span<const std::uint8_t> ctx_in) {
  T out{};
  if (ctx_in.empty()) return out;
  if (!all_zero(ctx_in, sizeof(T), ctx_in.size())) {
    return make_error(Errc::kInvalid, "ctx_in is {} bytes; only the first {} may be non-zero", ctx_in.size(), sizeof(T));
  }
  std::memcpy(&out, ctx_in.data(), std::min(ctx_in.size(), sizeof(T)));
  return out;
}

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  return {p, p + sizeof(T)};
}

// convert___skb_to_skb: the fields ctx_in may set; everything else must be zero.
Result<void> check_skb_ctx_in(const struct __sk_buff& s) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(&s);
  const std::span<const std::uint8_t> bytes(b, sizeof s);
  const auto zero_between = [&](std::size_t from, std::size_t to) { return all_zero(bytes, from, to); };
#define END_OF(f) (offsetof(struct __sk_buff, f) + sizeof(s.f))
#define START_OF(f) offsetof(struct __sk_buff, f)
  if (!zero_between(0, START_OF(mark)) || !zero_between(END_OF(mark), START_OF(priority)) ||
      !zero_between(END_OF(ifindex), START_OF(cb)) || !zero_between(END_OF(cb), START_OF(tstamp)) ||
      !zero_between(END_OF(tstamp), START_OF(wire_len)) || !zero_between(END_OF(gso_segs), START_OF(gso_size)) ||
      !zero_between(END_OF(gso_size), START_OF(hwtstamp))) {
    return make_error(Errc::kInvalid, "ctx_in sets __sk_buff fields test_run does not accept (only mark, priority, "
                                      "ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size, hwtstamp)");
  }
#undef END_OF
#undef START_OF
  if (s.ifindex > 1) return make_error(Errc::kNoDevice, "ifindex {}: bpfvm has only the loopback device (1)", s.ifindex);
  return {};
}

// eth_type_trans on the loopback device (address 00:00:00:00:00:00): protocol and packet type.
void classify_ethernet(std::span<const std::uint8_t> frame, struct __sk_buff& s) {
  const std::uint8_t* dst = frame.data();
  static constexpr std::uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static constexpr std::uint8_t kZero[6] = {};
  if (dst[0] & 1) {
    s.pkt_type = std::memcmp(dst, kBroadcast, 6) == 0 ? PACKET_BROADCAST : PACKET_MULTICAST;
  } else {
    s.pkt_type = std::memcmp(dst, kZero, 6) == 0 ? PACKET_HOST : PACKET_OTHERHOST;
  }
  const std::uint16_t type = static_cast<std::uint16_t>(frame[12] << 8 | frame[13]);
  // Below 0x600 the field is a length (802.3): the kernel reports ETH_P_802_3 (or 802.2).
  const std::uint16_t proto = type >= 0x600 ? type : ETH_P_802_3;
  s.protocol = static_cast<std::uint32_t>((proto >> 8) | ((proto & 0xff) << 8));  // __be16 in a u32
}

// Runs the runner's program `repeat` times on its one context, as the kernel's bpf_test_run does: the
// context and the packet are prepared once, so a program that changes the packet sees its own changes on the next run
// (the kernel's data_out after `repeat 5` of a TTL decrement holds TTL - 5).
// What helpers see when this process runs a program (as BPF_PROG_TEST_RUN runs one in the caller's
// context): this thread as the task, its execution slot.
helpers::RunEnv this_thread_env() {
  helpers::RunEnv env = helpers::current_thread_env();
  env.cpu = maps::this_cpu();
  return env;
}

Result<std::uint32_t> timed_runs(std::uint32_t repeat, std::uint64_t& retval, Program::Runner& runner) {
  if (repeat == 0) repeat = 1;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < repeat; ++i) retval = BPFVM_TRY(runner.run());
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  const std::uint64_t avg = static_cast<std::uint64_t>(ns) / repeat;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(avg, UINT32_MAX));
}

}  // namespace

namespace {
std::atomic<bool> g_stats_enabled{false};
}  // namespace

void Program::enable_stats(bool on) { g_stats_enabled.store(on, std::memory_order_relaxed); }
bool Program::stats_enabled() { return g_stats_enabled.load(std::memory_order_relaxed); }

Program::Runner::Runner(const Program& program, void* ctx, std::size_t ctx_size, std::span<const std::uint8_t> packet,
                        const helpers::RunEnv& env, std::uint32_t tail_calls)
    : program_(program), env_(env), frame_{ctx, ctx_size, packet} {
  // Every loaded program was verified and runs unchecked: no memory regions to hand the engine (the
  // interpreter's checked mode is for programs that were not).
  const Parts& p = program.p_;
  env_.trace_pipe = static_cast<maps::RingBuffer*>(p.trace_pipe.get());
  env_.prog_type = p.prog_type;
  env_.packet = packet;
  if (p.prog_type == BPF_PROG_TYPE_XDP && ctx_size == sizeof(XdpContext)) {
    auto* x = static_cast<XdpContext*>(ctx);
    env_.xdp = {&x->data, &x->data_end, &x->data_meta, x->data_hard_start};
  }
  env_.tail_call = [](const void* self, const void* next, helpers::RunEnv& caller) -> Result<std::uint64_t> {
    const auto* f = static_cast<const Frame*>(self);
    return static_cast<const Program*>(next)->run(f->ctx, f->ctx_size, f->packet, &caller);
  };
  env_.tail_call_self = &frame_;
  env_.kernel = &KernelTasks::instance();
  env_.program = &program;
  env_.tail_calls = tail_calls;
  if (p.prog_type == BPF_PROG_TYPE_TRACING) {
    env_.func_args = p.attach_args;
    env_.func_returned = p.expected_attach_type == BPF_TRACE_FEXIT || p.expected_attach_type == BPF_MODIFY_RETURN;
  }
  // A program with cgroup storage gets it zeroed for these runs, as a test run's in the kernel (one
  // storage of each type per program; the verifier proves the helper's pointer is never NULL).
  if (p.cgroup_storage_size) {
    cgroup_storage_.assign((std::size_t{p.cgroup_storage_size} + 7) / 8 * 8, 0);
    env_.cgroup_storage = cgroup_storage_.data();
  }
  if (p.percpu_cgroup_storage_size) {
    env_.percpu_stride = (std::size_t{p.percpu_cgroup_storage_size} + 7) / 8 * 8;
    percpu_cgroup_storage_.assign(env_.percpu_stride * maps::possible_cpus(), 0);
    env_.percpu_cgroup_storage = percpu_cgroup_storage_.data();
  }
  rc_.r1 = reinterpret_cast<std::uint64_t>(ctx);
  // LD_ABS / LD_IND read socket buffers only (the kernel refuses them in other program types).
  if (p.prog_type != BPF_PROG_TYPE_XDP) rc_.packet = packet;
  rc_.user = &env_;
  if (p.jit) jit_.emplace(*p.jit, rc_);
}

Result<std::uint64_t> Program::Runner::enter() {
  env_.held_lock = nullptr;
  if (jit_) return jit_->run(rc_.r1);
  if (!program_.p_.interpreter) [[unlikely]] {
    return make_error(Errc::kNotSupported, "{} programs do not run in bpfvm", obj::prog_type_name(program_.p_.prog_type));
  }
  return program_.p_.interpreter->run(rc_);
}

Result<std::uint64_t> Program::Runner::run() {
  const Program& prog = program_;
  // Statistics only while enabled, and a profile only while `bpfvm prog profile` watches: otherwise a
  // run is the engine's entry and a test.
  if (!stats_enabled() && !(prog.profile_ && prog.profile_->on())) [[likely]] {
    auto r = enter();
    if (r && !env_.held_lock) [[likely]] return r;
    return finish(std::move(r));
  }
  const bool stats = stats_enabled();
  const auto start = stats ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  auto r = prog.profile_ && prog.profile_->on() ? prog.profile_->record([this] { return enter(); }) : enter();
  if (stats) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    prog.run_count_.fetch_add(1, std::memory_order_relaxed);
    prog.run_time_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  }
  return finish(std::move(r));
}

Result<std::uint64_t> Program::Runner::finish(Result<std::uint64_t> r) {
  if (env_.held_lock) [[unlikely]] {
    // The kernel's verifier refuses a program that can exit holding a bpf_spin_lock; without it, the
    // runtime releases the lock and fails the run.
    env_.held_lock->store(0, std::memory_order_release);
    if (r) r = make_error(Errc::kFault, "the program exited holding a bpf_spin_lock");
  }
  if (!r) [[unlikely]] return std::move(r).error().with_context(fmt::format("program '{}'", program_.p_.name));
  return r;
}

Result<std::uint64_t> Program::Runner::run_function(std::uint32_t pc, const std::uint64_t (&args)[5]) {
  vm::RunContext rc = rc_;
  rc.entry = pc;
  rc.r1 = args[0], rc.r2 = args[1], rc.r3 = args[2], rc.r4 = args[3], rc.r5 = args[4];
  env_.held_lock = nullptr;
  const Parts& p = program_.p_;
  if (p.jit) return finish(p.jit->run(rc));
  if (p.interpreter) return finish(p.interpreter->run(rc));
  return make_error(Errc::kNotSupported, "{} programs do not run in bpfvm", obj::prog_type_name(p.prog_type));
}

void Program::Runner::set_test_socket(const void* sk) {
  // Owners of sk_storage are socket cookies; a test run's socket has none, so it takes a number no
  // cookie has (the top bit set), new for each run.
  static std::atomic<std::uint64_t> next{0};
  env_.test_socket = reinterpret_cast<std::uint64_t>(sk);
  env_.test_socket_owner = (1ULL << 63) | next.fetch_add(1, std::memory_order_relaxed);
}

Program::Runner::~Runner() {
  if (!env_.test_socket_owner) return;
  const maps::ObjectMap::OwnerKey owner{env_.test_socket_owner, 0};
  for (const auto& m : program_.p_.maps) {
    if (m->def().type == BPF_MAP_TYPE_SK_STORAGE) (void)static_cast<maps::ObjectMap&>(m->impl()).remove(&owner);
  }
}

Result<std::uint64_t> Program::run(void* ctx, std::size_t ctx_size, std::span<const std::uint8_t> packet,
                                   const helpers::RunEnv* parent) const {
  Runner runner(*this, ctx, ctx_size, packet, parent ? *parent : this_thread_env(), parent ? parent->tail_calls + 1 : 0);
  return runner.run();
}

Result<std::uint64_t> Program::run_for(const helpers::RunEnv& origin, void* ctx, std::size_t ctx_size) const {
  Runner runner(*this, ctx, ctx_size, {}, origin);
  return runner.run();
}

maps::Map* Program::timer_map(const void* addr, std::size_t size) const {
  for (const auto& m : p_.maps) {
    if (m->def().timer_off >= 0 && m->impl().holds(addr, size)) return &m->impl();
  }
  return nullptr;
}

Result<std::uint64_t> Program::run_timer_callback(std::uint32_t pc, const std::uint64_t (&args)[5]) const {
  // Only a function the program names as a callback (what the verifier verified as one): the timer's
  // word is in shared memory, and a word that names anything else is refused rather than run.
  bool named = false;
  for (std::size_t i = 0; i + 1 < p_.xlated.size() && !named; ++i) {
    const isa::RawInsn& in = p_.xlated[i];
    if (!in.is_lddw()) continue;
    named = in.src == BPF_PSEUDO_FUNC && static_cast<std::int64_t>(i) + 1 + in.imm == static_cast<std::int64_t>(pc);
    ++i;
  }
  if (!named) return make_error(Errc::kInvalid, "instruction {} of program '{}' is no callback", pc, p_.name);
  Runner runner(*this, reinterpret_cast<void*>(args[0]), 0, {}, this_thread_env());
  return runner.run_function(pc, args);
}

Result<TestRunResult> Program::test_run(const TestRunRequest& req) const {
  TestRunResult out;
  std::uint64_t retval = 0;
  switch (p_.prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT:
    case BPF_PROG_TYPE_CGROUP_SKB: {
      // bpf_prog_test_run_skb: the frame must hold an Ethernet header; tc programs (L2) see it, socket
      // filters and cgroup_skb programs see the packet from the network header on.
      if (req.data_in.size() < ETH_HLEN) {
        return make_error(Errc::kInvalid, "data_in is {} bytes, shorter than an Ethernet header", req.data_in.size());
      }
      if (req.data_in.size() > kSkbMaxData) return make_error(Errc::kInvalid, "data_in is larger than {}", kSkbMaxData);
      // An IPv4 or IPv6 frame must hold the whole network header (the kernel refuses shorter ones).
      const std::uint16_t ethertype = static_cast<std::uint16_t>(req.data_in[12] << 8 | req.data_in[13]);
      const std::size_t l3 = req.data_in.size() - ETH_HLEN;
      if ((ethertype == ETH_P_IP && l3 < 20) || (ethertype == ETH_P_IPV6 && l3 < 40)) {
        return make_error(Errc::kInvalid, "data_in: an {} frame shorter than its network header ({} bytes)",
                          ethertype == ETH_P_IP ? "IPv4" : "IPv6", l3);
      }
      const auto user = BPFVM_TRY(user_ctx<struct __sk_buff>(req.ctx_in));
      BPFVM_TRY(check_skb_ctx_in(user));
      const bool l2 = p_.prog_type == BPF_PROG_TYPE_SCHED_CLS || p_.prog_type == BPF_PROG_TYPE_SCHED_ACT;
      const std::uint32_t hh = l2 ? 0 : ETH_HLEN;
      const auto frame_len = static_cast<std::uint32_t>(req.data_in.size());
      if (user.wire_len != 0 && (user.wire_len < frame_len - hh || user.wire_len > 65536)) {
        return make_error(Errc::kInvalid, "wire_len {} is out of range", user.wire_len);
      }
      std::vector<std::uint8_t> packet;
      SkbContext ctx{};
      packet.resize(req.data_in.size());
      auto prepare = [&] {
        std::memcpy(packet.data(), req.data_in.data(), req.data_in.size());
        ctx = SkbContext{};
        struct __sk_buff& s = ctx.user;
        s.mark = user.mark;
        s.priority = user.priority;
        s.ingress_ifindex = user.ingress_ifindex;
        s.ifindex = 1;  // the loopback device
        std::memcpy(s.cb, user.cb, sizeof s.cb);
        s.tstamp = user.tstamp;
        s.gso_segs = user.gso_segs;
        s.gso_size = user.gso_size;
        s.hwtstamp = user.hwtstamp;
        classify_ethernet(packet, s);
        s.len = frame_len - hh;
        s.wire_len = user.wire_len ? user.wire_len : s.len;
        ctx.data = reinterpret_cast<std::uint64_t>(packet.data() + hh);
        ctx.data_meta = ctx.data;
        ctx.data_end = reinterpret_cast<std::uint64_t>(packet.data() + packet.size());
        // bpf_prog_test_run_skb's dummy socket: closed, no protocol, the family and the addresses of the
        // packet's network header.
        struct bpf_sock& sk = ctx.sock;
        sk.state = 7;  // TCP_CLOSE (sock_init_data)
        sk.rx_queue_mapping = -1;
        const std::uint8_t* net = req.data_in.data() + ETH_HLEN;
        if (ethertype == ETH_P_IP) {
          sk.family = AF_INET;
          std::memcpy(&sk.src_ip4, net + 12, 4);
          std::memcpy(&sk.dst_ip4, net + 16, 4);
        } else if (ethertype == ETH_P_IPV6) {
          sk.family = AF_INET6;
          std::memcpy(sk.src_ip6, net + 8, 16);
          std::memcpy(sk.dst_ip6, net + 24, 16);
        }
        ctx.sk = reinterpret_cast<std::uint64_t>(&ctx.sock);
      };
      prepare();
      Runner runner(*this, &ctx, sizeof ctx, {packet.data() + hh, packet.size() - hh}, this_thread_env());
      runner.set_test_socket(&ctx.sock);
      out.duration_ns = BPFVM_TRY(timed_runs(req.repeat, retval, runner));
      out.data_out = packet;
      // Programs below L2 never see the link header; the kernel hands it back zeroed.
      if (!l2) std::fill(out.data_out.begin(), out.data_out.begin() + ETH_HLEN, 0);
      // convert_skb_to___skb: what ctx_out reports.
      struct __sk_buff back {};
      back.mark = ctx.user.mark;
      back.priority = ctx.user.priority;
      back.ingress_ifindex = ctx.user.ingress_ifindex;
      back.ifindex = ctx.user.ifindex;
      std::memcpy(back.cb, ctx.user.cb, sizeof back.cb);
      back.tstamp = ctx.user.tstamp;
      back.wire_len = ctx.user.wire_len;
      back.gso_segs = ctx.user.gso_segs;
      back.gso_size = ctx.user.gso_size;
      back.hwtstamp = ctx.user.hwtstamp;
      out.ctx_out = bytes_of(back);
      break;
    }
    case BPF_PROG_TYPE_XDP: {
      // bpf_prog_test_run_xdp: ctx_in's data is the length of metadata at the start of data_in.
      if (req.data_in.size() < ETH_HLEN) {
        return make_error(Errc::kInvalid, "data_in is {} bytes, shorter than an Ethernet header", req.data_in.size());
      }
      const auto user = BPFVM_TRY(user_ctx<struct xdp_md>(req.ctx_in));
      const auto size = static_cast<std::uint32_t>(req.data_in.size());
      std::uint32_t meta = 0;
      if (!req.ctx_in.empty()) {
        if (user.data_meta != 0 || user.data_end != size || user.data > user.data_end || user.data % 4 != 0 ||
            user.data > kXdpMaxMeta) {
          return make_error(Errc::kInvalid, "ctx_in: data_meta must be 0, data the metadata length (a multiple of 4, "
                                            "at most {}) and data_end the size of data_in", kXdpMaxMeta);
        }
        if (user.egress_ifindex != 0) return make_error(Errc::kInvalid, "ctx_in: egress_ifindex must be 0");
        if (user.ingress_ifindex > 1) return make_error(Errc::kNoDevice, "ingress_ifindex {}: no such device", user.ingress_ifindex);
        if (user.rx_queue_index != 0) return make_error(Errc::kInvalid, "ctx_in: rx_queue_index {} is out of range", user.rx_queue_index);
        meta = user.data;
      }
      if (size - meta > kXdpMaxLinear) return make_error(Errc::kInvalid, "data_in is larger than {} bytes", kXdpMaxLinear);
      std::vector<std::uint8_t> buffer;
      XdpContext ctx{};
      buffer.assign(kXdpHeadroom - meta + req.data_in.size(), 0);
      std::memcpy(buffer.data() + kXdpHeadroom - meta, req.data_in.data(), req.data_in.size());
      ctx.data_meta = reinterpret_cast<std::uint64_t>(buffer.data() + kXdpHeadroom - meta);
      ctx.data = reinterpret_cast<std::uint64_t>(buffer.data() + kXdpHeadroom);
      ctx.data_end = reinterpret_cast<std::uint64_t>(buffer.data() + buffer.size());
      ctx.data_hard_start = reinterpret_cast<std::uint64_t>(buffer.data());
      ctx.user.ingress_ifindex = 1;  // the loopback device's rx queue 0
      ctx.user.rx_queue_index = 0;
      Runner runner(*this, &ctx, sizeof ctx, {buffer.data() + kXdpHeadroom, req.data_in.size() - meta},
                    this_thread_env());
      out.duration_ns = BPFVM_TRY(timed_runs(req.repeat, retval, runner));
      const std::size_t from = ctx.data_meta - reinterpret_cast<std::uint64_t>(buffer.data());
      out.data_out.assign(buffer.begin() + static_cast<std::ptrdiff_t>(from), buffer.end());
      // xdp_convert_buff_to_md: the caller's xdp_md with the offsets updated; the rest as given.
      struct xdp_md back = user;
      back.data = static_cast<std::uint32_t>(ctx.data - ctx.data_meta);
      back.data_meta = 0;
      back.data_end = static_cast<std::uint32_t>(ctx.data_end - ctx.data_meta);
      out.ctx_out = bytes_of(back);
      break;
    }
    case BPF_PROG_TYPE_TRACEPOINT:
    case BPF_PROG_TYPE_RAW_TRACEPOINT:
    case BPF_PROG_TYPE_KPROBE:
    case BPF_PROG_TYPE_PERF_EVENT: {
      // Raw contexts: ctx_in is the context itself (zero-extended to the type's size). The kernel runs
      // only raw_tracepoint this way; bpfvm runs every tracing type so they can be tested.
      if (!req.data_in.empty()) return make_error(Errc::kInvalid, "{} programs take ctx_in, not data_in", "tracing");
      const std::size_t size = user_context_size(p_.prog_type);
      if (req.ctx_in.size() > size) {
        return make_error(Errc::kInvalid, "ctx_in is {} bytes, larger than the context ({})", req.ctx_in.size(), size);
      }
      std::vector<std::uint8_t> ctx(size, 0);
      std::copy(req.ctx_in.begin(), req.ctx_in.end(), ctx.begin());
      Runner runner(*this, ctx.data(), ctx.size(), {}, this_thread_env());
      // A kprobe program's pt_regs are, for a user-space event, the user's registers (the stack helpers
      // walk from them).
      if (p_.prog_type == BPF_PROG_TYPE_KPROBE) runner.set_user_regs(ctx.data());
      out.duration_ns = BPFVM_TRY(timed_runs(req.repeat, retval, runner));
      out.ctx_out.assign(ctx.begin(), ctx.begin() + static_cast<std::ptrdiff_t>(req.ctx_in.size()));
      break;
    }
    case BPF_PROG_TYPE_SYSCALL: {
      // bpf_prog_test_run_syscall: ctx_in alone, at least as large as what the program touches and
      // below 64 KiB; one run, in the calling thread; the context goes back to ctx_in.
      if (!req.data_in.empty() || req.repeat > 1) {
        return make_error(Errc::kInvalid, "syscall programs take ctx_in only (no data_in, no repeat)");
      }
      if (req.ctx_in.size() > kSyscallContextMax || req.ctx_in.size() < p_.max_ctx_offset) {
        return make_error(Errc::kInvalid, "ctx_in is {} bytes; the program uses {} (and at most {} are taken)",
                          req.ctx_in.size(), p_.max_ctx_offset, kSyscallContextMax);
      }
      std::vector<std::uint8_t> ctx(req.ctx_in.begin(), req.ctx_in.end());
      helpers::SyscallServices services;
      services.self = req.runtime;
      services.bpf = [](void* self, int cmd, void* attr, std::uint32_t size) -> long {
        if (!self) return -EOPNOTSUPP;
        const long r = static_cast<Runtime*>(self)->bpf(cmd, static_cast<union bpf_attr*>(attr), size);
        return r < 0 ? -errno : r;
      };
      services.close = [](void* self, int fd) -> long {
        if (!self) return -EBADF;
        auto r = static_cast<Runtime*>(self)->close_fd(fd);
        return r ? 0 : -static_cast<long>(r.error().errno_value());
      };
      services.find_kernel_type = [](const char* name, std::uint32_t kind) -> long {
        auto btf = obj::running_kernel_btf();
        if (!btf) return -ENOENT;
        const int id = btf__find_by_name_kind((*btf)->get(), name, kind);
        return id > 0 ? id : -ENOENT;
      };
      helpers::RunEnv env = this_thread_env();
      env.syscall = &services;
      Runner runner(*this, ctx.empty() ? nullptr : ctx.data(), ctx.size(), {}, env);
      out.duration_ns = BPFVM_TRY(timed_runs(1, retval, runner));
      out.ctx_out = std::move(ctx);
      break;
    }
    default:
      if (verified_only_type(p_.prog_type)) {
        return make_error(Errc::kNotSupported,
                          "{} programs are verified and loaded but do not run in bpfvm: they attach to kernel "
                          "objects (cgroups, sockets, routes) that user space does not have",
                          obj::prog_type_name(p_.prog_type));
      }
      return make_error(Errc::kNotSupported, "test_run is not supported for program type {}", p_.prog_type);
  }
  out.retval = static_cast<std::uint32_t>(retval);
  return out;
}

}  // namespace bpfvm::runtime
