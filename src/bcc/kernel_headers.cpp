#include "bpfvm/bcc/kernel_headers.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/sha256.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/core.hpp"

namespace bpfvm::bcc {

namespace {

// Bumped when the tree's layout or contents change, so that caches made by an older bpfvm are not used.
constexpr std::string_view kTreeVersion = "8";

// The kernel's macros that programs use without naming a header (include/linux/compiler_types.h's
// annotations, and what nearly every kernel header brings in). Values are those of Linux 6.x, x86-64.
constexpr std::string_view kCommonMacros = R"(/* annotations (linux/compiler_types.h): nothing for BPF */
#define __user
#define __kernel
#define __force
#define __iomem
#define __rcu
#define __percpu
#define __must_check
#define __bitwise
#define __safe
#define __private
#define __randomize_layout
#define __no_randomize_layout
#define __always_inline inline __attribute__((__always_inline__))
#define noinline __attribute__((__noinline__))
#define __packed __attribute__((__packed__))
#define __aligned(x) __attribute__((__aligned__(x)))
#define __maybe_unused __attribute__((__unused__))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val) (*(volatile __typeof__(x) *)&(x) = (val))
#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef offsetof
#define offsetof(TYPE, MEMBER) __builtin_offsetof(TYPE, MEMBER)
#endif
#define container_of(ptr, type, member) ({ void *__mptr = (void *)(ptr); ((type *)(__mptr - offsetof(type, member))); })
#define ARRAY_SIZE(arr) (sizeof(arr) / sizeof((arr)[0]))
/* linux/minmax.h (without its type checks) */
#define min(x, y) ({ __typeof__(x) __x = (x); __typeof__(y) __y = (y); __x < __y ? __x : __y; })
#define max(x, y) ({ __typeof__(x) __x = (x); __typeof__(y) __y = (y); __x > __y ? __x : __y; })
#define min_t(type, x, y) min((type)(x), (type)(y))
#define max_t(type, x, y) max((type)(x), (type)(y))
#define clamp(val, lo, hi) min(max(val, lo), hi)
#define BITS_PER_LONG 64
/* limits (uapi/linux/limits.h) */
#define NGROUPS_MAX 65536
#define ARG_MAX 131072
#define NAME_MAX 255
#define PATH_MAX 4096
#define XATTR_NAME_MAX 255
#define XATTR_SIZE_MAX 65536
/* pages (asm/page_types.h) */
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
/* time (vdso/time64.h) */
#define MSEC_PER_SEC 1000L
#define USEC_PER_MSEC 1000L
#define NSEC_PER_USEC 1000L
#define NSEC_PER_MSEC 1000000L
#define USEC_PER_SEC 1000000L
#define NSEC_PER_SEC 1000000000L
)";

constexpr std::string_view kSchedMacros = R"(/* task states and flags (linux/sched.h) */
#define TASK_RUNNING 0x00000000
#define TASK_INTERRUPTIBLE 0x00000001
#define TASK_UNINTERRUPTIBLE 0x00000002
#define __TASK_STOPPED 0x00000004
#define __TASK_TRACED 0x00000008
#define EXIT_DEAD 0x00000010
#define EXIT_ZOMBIE 0x00000020
#define EXIT_TRACE (EXIT_ZOMBIE | EXIT_DEAD)
#define TASK_PARKED 0x00000040
#define TASK_DEAD 0x00000080
#define TASK_WAKEKILL 0x00000100
#define TASK_WAKING 0x00000200
#define TASK_NOLOAD 0x00000400
#define TASK_NEW 0x00000800
#define TASK_RTLOCK_WAIT 0x00001000
#define TASK_FREEZABLE 0x00002000
#define TASK_FROZEN 0x00008000
#define TASK_STATE_MAX 0x00010000
#define TASK_KILLABLE (TASK_WAKEKILL | TASK_UNINTERRUPTIBLE)
#define TASK_STOPPED (TASK_WAKEKILL | __TASK_STOPPED)
#define TASK_TRACED __TASK_TRACED
#define TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD)
#define TASK_NORMAL (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE)
#define PF_VCPU 0x00000001
#define PF_IDLE 0x00000002
#define PF_EXITING 0x00000004
#define PF_POSTCOREDUMP 0x00000008
#define PF_IO_WORKER 0x00000010
#define PF_WQ_WORKER 0x00000020
#define PF_FORKNOEXEC 0x00000040
#define PF_MCE_PROCESS 0x00000080
#define PF_SUPERPRIV 0x00000100
#define PF_DUMPCORE 0x00000200
#define PF_SIGNALED 0x00000400
#define PF_MEMALLOC 0x00000800
#define PF_NPROC_EXCEEDED 0x00001000
#define PF_USED_MATH 0x00002000
#define PF_USER_WORKER 0x00004000
#define PF_NOFREEZE 0x00008000
#define PF_KSWAPD 0x00020000
#define PF_MEMALLOC_NOFS 0x00040000
#define PF_MEMALLOC_NOIO 0x00080000
#define PF_LOCAL_THROTTLE 0x00100000
#define PF_KTHREAD 0x00200000
#define PF_RANDOMIZE 0x00400000
)";

constexpr std::string_view kCloneMacros = R"(/* clone flags (uapi/linux/sched.h) */
#define CSIGNAL 0x000000ff
#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_PIDFD 0x00001000
#define CLONE_PTRACE 0x00002000
#define CLONE_VFORK 0x00004000
#define CLONE_PARENT 0x00008000
#define CLONE_THREAD 0x00010000
#define CLONE_NEWNS 0x00020000
#define CLONE_SYSVSEM 0x00040000
#define CLONE_SETTLS 0x00080000
#define CLONE_PARENT_SETTID 0x00100000
#define CLONE_CHILD_CLEARTID 0x00200000
#define CLONE_DETACHED 0x00400000
#define CLONE_UNTRACED 0x00800000
#define CLONE_CHILD_SETTID 0x01000000
#define CLONE_NEWCGROUP 0x02000000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000
#define CLONE_NEWNET 0x40000000
#define CLONE_IO 0x80000000
)";

constexpr std::string_view kFileMacros = R"(/* linux/dcache.h, which linux/fs.h includes */
#define DNAME_INLINE_LEN 40
/* open flags (asm-generic/fcntl.h), *at flags (uapi/linux/fcntl.h) */
#define O_ACCMODE 00000003
#define O_RDONLY 00000000
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_NOCTTY 00000400
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_NONBLOCK 00004000
#define O_NDELAY O_NONBLOCK
#define O_DSYNC 00010000
#define FASYNC 00020000
#define O_DIRECT 00040000
#define O_LARGEFILE 00100000
#define O_DIRECTORY 00200000
#define O_NOFOLLOW 00400000
#define O_NOATIME 01000000
#define O_CLOEXEC 02000000
#define __O_SYNC 04000000
#define O_SYNC (__O_SYNC | O_DSYNC)
#define O_PATH 010000000
#define __O_TMPFILE 020000000
#define O_TMPFILE (__O_TMPFILE | O_DIRECTORY)
#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define AT_NO_AUTOMOUNT 0x800
#define AT_EMPTY_PATH 0x1000
/* file types and modes (uapi/linux/stat.h) */
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define S_ISUID 0004000
#define S_ISGID 0002000
#define S_ISVTX 0001000
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISCHR(m) (((m) & S_IFMT) == S_IFCHR)
#define S_ISBLK(m) (((m) & S_IFMT) == S_IFBLK)
#define S_ISFIFO(m) (((m) & S_IFMT) == S_IFIFO)
#define S_ISSOCK(m) (((m) & S_IFMT) == S_IFSOCK)
/* device numbers (linux/kdev_t.h) */
#define MINORBITS 20
#define MINORMASK ((1U << MINORBITS) - 1)
#define MAJOR(dev) ((unsigned int)((dev) >> MINORBITS))
#define MINOR(dev) ((unsigned int)((dev) & MINORMASK))
#define MKDEV(ma, mi) (((ma) << MINORBITS) | (mi))
/* file modes (linux/fs.h) */
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_LSEEK 0x4
#define FMODE_PREAD 0x8
#define FMODE_PWRITE 0x10
#define FMODE_EXEC 0x20
#define FMODE_OPENED 0x80000
#define FMODE_CREATED 0x100000
)";

constexpr std::string_view kLog2Macros = R"(/* linux/log2.h, as constant expressions (BCC's BPF_STACK_TRACE sizes its table with
   roundup_pow_of_two) */
#define __bpfvm_ilog2(n) ((n) < 2 ? 0 : 63 - __builtin_clzll((unsigned long long)(n)))
#define ilog2(n) __bpfvm_ilog2(n)
#define roundup_pow_of_two(n) ((n) <= 1 ? 1UL : 1UL << (__bpfvm_ilog2((n) - 1) + 1))
#define rounddown_pow_of_two(n) (1UL << __bpfvm_ilog2(n))
#define is_power_of_2(n) ((n) != 0 && (((n) & ((n) - 1)) == 0))
#define order_base_2(n) ((n) > 1 ? __bpfvm_ilog2((n) - 1) + 1 : 0)
)";

constexpr std::string_view kSocketMacros = R"(/* address families (linux/socket.h) */
#define AF_UNSPEC 0
#define AF_UNIX 1
#define AF_LOCAL 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define AF_PACKET 17
#define AF_VSOCK 40
#define AF_XDP 44
#define PF_UNSPEC AF_UNSPEC
#define PF_UNIX AF_UNIX
#define PF_INET AF_INET
#define PF_INET6 AF_INET6
#define PF_NETLINK AF_NETLINK
#define PF_PACKET AF_PACKET
#define SCM_RIGHTS 0x01
#define SCM_CREDENTIALS 0x02
/* ethernet (uapi/linux/if_ether.h) */
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_IPV6 0x86DD
/* byte order (linux/byteorder/generic.h, which the networking headers bring in): x86-64 is little-endian */
#define __bpfvm_swab16(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define __bpfvm_swab32(x) ((__u32)__builtin_bswap32((__u32)(x)))
#define __bpfvm_swab64(x) ((__u64)__builtin_bswap64((__u64)(x)))
#define ntohs(x) __bpfvm_swab16(x)
#define htons(x) __bpfvm_swab16(x)
#define ntohl(x) __bpfvm_swab32(x)
#define htonl(x) __bpfvm_swab32(x)
#define be16_to_cpu(x) __bpfvm_swab16(x)
#define cpu_to_be16(x) __bpfvm_swab16(x)
#define be32_to_cpu(x) __bpfvm_swab32(x)
#define cpu_to_be32(x) __bpfvm_swab32(x)
#define be64_to_cpu(x) __bpfvm_swab64(x)
#define cpu_to_be64(x) __bpfvm_swab64(x)
#define le16_to_cpu(x) ((__u16)(x))
#define le32_to_cpu(x) ((__u32)(x))
#define le64_to_cpu(x) ((__u64)(x))
#define cpu_to_le16(x) ((__u16)(x))
#define cpu_to_le32(x) ((__u32)(x))
#define cpu_to_le64(x) ((__u64)(x))
)";

constexpr std::string_view kSockFields = R"(/* struct sock's names for struct sock_common's fields (net/sock.h) */
#define sk_node __sk_common.skc_node
#define sk_nulls_node __sk_common.skc_nulls_node
#define sk_refcnt __sk_common.skc_refcnt
#define sk_tx_queue_mapping __sk_common.skc_tx_queue_mapping
#define sk_hash __sk_common.skc_hash
#define sk_portpair __sk_common.skc_portpair
#define sk_num __sk_common.skc_num
#define sk_dport __sk_common.skc_dport
#define sk_addrpair __sk_common.skc_addrpair
#define sk_daddr __sk_common.skc_daddr
#define sk_rcv_saddr __sk_common.skc_rcv_saddr
#define sk_family __sk_common.skc_family
#define sk_state __sk_common.skc_state
#define sk_reuse __sk_common.skc_reuse
#define sk_reuseport __sk_common.skc_reuseport
#define sk_ipv6only __sk_common.skc_ipv6only
#define sk_net_refcnt __sk_common.skc_net_refcnt
#define sk_bound_dev_if __sk_common.skc_bound_dev_if
#define sk_bind_node __sk_common.skc_bind_node
#define sk_prot __sk_common.skc_prot
#define sk_net __sk_common.skc_net
#define sk_v6_daddr __sk_common.skc_v6_daddr
#define sk_v6_rcv_saddr __sk_common.skc_v6_rcv_saddr
#define sk_cookie __sk_common.skc_cookie
#define sk_incoming_cpu __sk_common.skc_incoming_cpu
#define sk_flags __sk_common.skc_flags
#define sk_rxhash __sk_common.skc_rxhash
)";

constexpr std::string_view kInetSockFields = R"(/* struct inet_sock's names (net/inet_sock.h) */
static inline struct inet_sock *inet_sk(const struct sock *sk) { return (struct inet_sock *)sk; }
#define inet_daddr sk.__sk_common.skc_daddr
#define inet_rcv_saddr sk.__sk_common.skc_rcv_saddr
#define inet_dport sk.__sk_common.skc_dport
#define inet_num sk.__sk_common.skc_num
)";

constexpr std::string_view kTcpFunctions = R"(/* linux/tcp.h: a struct sock is the start of its struct tcp_sock */
#ifndef __BPFVM_TCP_SK
#define __BPFVM_TCP_SK
static inline struct tcp_sock *tcp_sk(const struct sock *sk) { return (struct tcp_sock *)sk; }
#endif
)";

constexpr std::string_view kInetCskFunctions = R"(/* net/inet_connection_sock.h */
static inline struct inet_connection_sock *inet_csk(const struct sock *sk) { return (struct inet_connection_sock *)sk; }
)";

constexpr std::string_view kErrnoMacros = R"(/* errno (uapi/asm-generic/errno-base.h) */
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOSPC 28
#define ESPIPE 29
#define EROFS 30
#define EPIPE 32
#define ERANGE 34
#define ENOSYS 38
#define EOPNOTSUPP 95
#define ETIMEDOUT 110
#define ECONNREFUSED 111
)";

constexpr std::string_view kSignalMacros = R"(/* signals (uapi/asm/signal.h) */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGILL 4
#define SIGTRAP 5
#define SIGABRT 6
#define SIGBUS 7
#define SIGFPE 8
#define SIGKILL 9
#define SIGUSR1 10
#define SIGSEGV 11
#define SIGUSR2 12
#define SIGPIPE 13
#define SIGALRM 14
#define SIGTERM 15
#define SIGSTKFLT 16
#define SIGCHLD 17
#define SIGCONT 18
#define SIGSTOP 19
#define SIGTSTP 20
#define SIGTTIN 21
#define SIGTTOU 22
#define SIGURG 23
#define SIGXCPU 24
#define SIGXFSZ 25
#define SIGVTALRM 26
#define SIGPROF 27
#define SIGWINCH 28
#define SIGIO 29
#define SIGPWR 30
#define SIGSYS 31
)";

constexpr std::string_view kBlockMacros = R"(/* request operations (linux/blk_types.h) */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
#define DISK_NAME_LEN 32
)";

constexpr std::string_view kDcacheMacros = R"(/* linux/dcache.h (linux/fs.h includes it) */
#define DNAME_INLINE_LEN 40
)";

// The headers of the tree (BCC's include path: include/, include/uapi/, arch/x86/include/...) and the
// macros each adds. The list: every header Debian's BCC tools and examples include, and those BCC's
// helpers.h includes.
struct Header {
  std::string_view path;
  std::string_view macros;
};
constexpr Header kHeaders[] = {
    {"include/uapi/linux/bpf.h", ""},
    {"include/linux/bpf.h", ""},
    {"include/uapi/linux/if_packet.h", ""},
    {"include/linux/log2.h", kLog2Macros},
    {"arch/x86/include/asm/page.h", ""},
    {"arch/x86/include/asm/ptrace.h", ""},
    {"include/uapi/linux/ptrace.h", ""},
    {"include/linux/ptrace.h", ""},
    {"include/linux/types.h", ""},
    {"include/linux/kernel.h", ""},
    {"include/linux/compiler.h", ""},
    {"include/linux/sched.h", kSchedMacros},
    {"include/uapi/linux/sched.h", kCloneMacros},
    {"include/linux/sched/signal.h", ""},
    {"include/linux/pid.h", ""},
    {"include/linux/pid_namespace.h", ""},
    {"include/linux/nsproxy.h", ""},
    {"include/linux/ns_common.h", ""},
    {"include/linux/cred.h", ""},
    {"include/linux/init_task.h", ""},
    {"include/linux/signal.h", kSignalMacros},
    {"include/linux/errno.h", kErrnoMacros},
    {"include/uapi/linux/limits.h", ""},
    {"include/linux/limits.h", ""},
    {"include/linux/time64.h", ""},
    {"include/linux/delay.h", ""},
    {"include/linux/fs.h", kFileMacros},
    {"include/linux/fs_types.h", kDcacheMacros},
    {"include/linux/fs_struct.h", ""},
    {"include/linux/fcntl.h", ""},
    {"include/uapi/linux/fcntl.h", ""},
    {"include/linux/stat.h", ""},
    {"include/uapi/linux/stat.h", ""},
    {"include/linux/dcache.h", kDcacheMacros},
    {"include/linux/path.h", ""},
    {"include/linux/mount.h", ""},
    {"include/linux/file.h", ""},
    {"include/linux/uio.h", ""},
    {"include/uapi/linux/openat2.h", ""},
    {"include/linux/nfs_fs.h", ""},
    {"include/linux/mm.h", ""},
    {"include/linux/mm_types.h", ""},
    {"include/linux/mmzone.h", ""},
    {"include/linux/oom.h", ""},
    {"include/linux/compaction.h", ""},
    {"include/linux/slab.h", ""},
    {"include/linux/slab_def.h", ""},
    {"include/linux/slub_def.h", ""},
    {"include/linux/kasan.h", ""},
    {"include/linux/security.h", ""},
    {"include/linux/blkdev.h", kBlockMacros},
    {"include/linux/blk-mq.h", kBlockMacros},
    {"include/linux/blk_types.h", kBlockMacros},
    {"include/linux/bio.h", kBlockMacros},
    {"include/linux/genhd.h", kBlockMacros},
    {"include/linux/interrupt.h", ""},
    {"include/linux/irq.h", ""},
    {"include/linux/irqdesc.h", ""},
    {"include/linux/virtio.h", ""},
    {"include/uapi/linux/bpf_perf_event.h", ""},
    {"include/uapi/linux/perf_event.h", ""},
    {"include/linux/socket.h", kSocketMacros},
    {"include/linux/skbuff.h", ""},
    {"include/linux/netdevice.h", ""},
    {"include/linux/tcp.h", kTcpFunctions},
    {"include/uapi/linux/tcp.h", ""},
    {"include/uapi/linux/udp.h", ""},
    {"include/uapi/linux/ip.h", ""},
    {"include/uapi/linux/ipv6.h", ""},
    {"include/uapi/linux/in.h", ""},
    {"include/uapi/linux/in6.h", ""},
    {"include/uapi/linux/if_ether.h", ""},
    {"include/net/sock.h", kSockFields},
    {"include/net/inet_sock.h", kInetSockFields},
    {"include/net/inet_connection_sock.h", kInetCskFunctions},
    {"include/net/net_namespace.h", ""},
    {"include/net/tcp.h", kTcpFunctions},
    {"include/net/tcp_states.h", ""},
    {"include/net/ip.h", ""},
};

// Types the kernel keeps out of include/ (fs/mount.h, fs/namei.c) are declared, not defined, as in the
// kernel's headers: BCC tools define their own (mountsnoop's struct mnt_namespace, dcsnoop's struct
// nameidata), which would otherwise be redefinitions. Nothing in the BTF embeds them by value.
std::string declared_only(std::string types) {
  for (const std::string_view name : {"mnt_namespace", "mount", "mountpoint", "nameidata"}) {
    const std::string head = fmt::format("\nstruct {} {{\n", name);
    const auto at = types.find(head);
    if (at == std::string::npos) continue;
    const auto end = types.find("\n};\n", at);
    if (end == std::string::npos) continue;
    types.replace(at, end + 4 - at, fmt::format("\nstruct {};\n", name));
  }
  return types;
}

std::string autoconf_of(const std::map<std::string, std::string>& config) {
  std::string out = "/* The running kernel's configuration (/proc/config.gz), as include/generated/autoconf.h */\n";
  for (const auto& [name, value] : config) {
    if (!name.starts_with("CONFIG_")) continue;
    if (value == "y") out += fmt::format("#define {} 1\n", name);
    else if (value == "m") out += fmt::format("#define {}_MODULE 1\n", name);
    else if (value != "n") out += fmt::format("#define {} {}\n", name, value);
  }
  // What BCC's helpers.h and tools test, and bpfvm provides whatever the configuration says: BPF, and
  // the syscall wrappers its kprobes serve (attach/kernel_functions.hpp).
  for (const std::string_view name : {"CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_BPF_EVENTS", "CONFIG_ARCH_HAS_SYSCALL_WRAPPER",
                                      "CONFIG_64BIT", "CONFIG_X86_64", "CONFIG_X86"}) {
    out += fmt::format("#ifndef {0}\n#define {0} 1\n#endif\n", name);
  }
  return out;
}

Result<void> write_text(const std::string& path, std::string_view text) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos) BPFVM_TRY(os::make_directories(path.substr(0, slash)));
  return os::write_file(path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

// Everything the tree's contents depend on, cheaply: the BTF file's identity (size and time; the
// kernel's changes with each boot of another kernel), the release and the configuration.
Result<std::string> tree_key(const std::string& btf_path, const std::string& config) {
  struct stat st {};
  if (::stat(btf_path.c_str(), &st) != 0) return make_error(Errc::kNotFound, "{}: the kernel has no BTF", btf_path);
  struct utsname u {};
  ::uname(&u);
  const std::string id = fmt::format("{}|{}|{}|{}|{}|{}|{}", kTreeVersion, btf_path, st.st_size, st.st_mtim.tv_sec,
                                     st.st_mtim.tv_nsec, u.release, u.version) + config;
  const auto digest = sha256(std::span(reinterpret_cast<const std::uint8_t*>(id.data()), id.size()));
  std::string hash;
  for (std::size_t i = 0; i < 8; ++i) hash += fmt::format("{:02x}", digest[i]);
  return hash;
}

}  // namespace

Result<void> write_kernel_headers(const std::string& btf_path, const std::string& dir) {
  const auto bytes = BPFVM_TRY(os::read_file(btf_path));
  const obj::Btf btf = BPFVM_TRY_CTX(obj::Btf::parse(bytes), "{}", btf_path);
  const std::string types = BPFVM_TRY_CTX(btf.c_declarations(), "{}", btf_path);
  const auto config = obj::read_kernel_config();

  BPFVM_TRY(write_text(dir + "/include/bpfvm/vmlinux.h",
                       "/* The kernel's types, from its BTF (" + btf_path + "), made by bpfvm */\n#ifndef __VMLINUX_H__\n"
                       "#define __VMLINUX_H__\n" + declared_only(types) + "\n#endif\n"));
  BPFVM_TRY(write_text(dir + "/include/bpfvm/kernel_macros.h",
                       "#ifndef __BPFVM_KERNEL_MACROS_H\n#define __BPFVM_KERNEL_MACROS_H\n" + std::string(kCommonMacros) + "#endif\n"));
  BPFVM_TRY(write_text(dir + "/include/generated/autoconf.h", autoconf_of(config)));
  BPFVM_TRY(write_text(dir + "/include/linux/kconfig.h", R"(/* BCC's first include (made by bpfvm): the kernel's configuration, types and common macros */
#ifndef _LINUX_KCONFIG_H
#define _LINUX_KCONFIG_H
#include <generated/autoconf.h>
#define __ARG_PLACEHOLDER_1 0,
#define __take_second_arg(__ignored, val, ...) val
#define __is_defined(x) ___is_defined(x)
#define ___is_defined(val) ____is_defined(__ARG_PLACEHOLDER_##val)
#define ____is_defined(arg1_or_junk) __take_second_arg(arg1_or_junk 1, 0)
#define IS_BUILTIN(option) __is_defined(option)
#define IS_MODULE(option) __is_defined(option##_MODULE)
#define IS_REACHABLE(option) (IS_BUILTIN(option) || (IS_MODULE(option) && __is_defined(MODULE)))
#define IS_ENABLED(option) (IS_BUILTIN(option) || IS_MODULE(option))
#include <bpfvm/vmlinux.h>
#include <bpfvm/kernel_macros.h>
/* what kernel headers bring in with each other (BCC's helpers.h and the tools rely on it): every
   stub that holds only macros */
#include <linux/log2.h>
#include <linux/socket.h>
#include <linux/sched.h>
#include <uapi/linux/sched.h>
#include <linux/fs.h>
#include <linux/dcache.h>
#include <linux/errno.h>
#include <linux/signal.h>
#include <linux/blkdev.h>
/* linux/bpf.h's types are all above: BCC's own copy of it must not define them again */
#define _UAPI__LINUX_BPF_H__
#endif
)"));
  unsigned version = 0;
  if (const auto it = config.find("LINUX_KERNEL_VERSION"); it != config.end()) version = static_cast<unsigned>(std::strtoul(it->second.c_str(), nullptr, 10));
  BPFVM_TRY(write_text(dir + "/include/linux/version.h",
                       fmt::format("#define LINUX_VERSION_CODE {}\n#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + "
                                   "((c) > 255 ? 255 : (c)))\n#define LINUX_VERSION_MAJOR {}\n#define LINUX_VERSION_PATCHLEVEL {}\n"
                                   "#define LINUX_VERSION_SUBLEVEL {}\n", version, version >> 16, (version >> 8) & 0xff, version & 0xff)));
  for (const Header& h : kHeaders) {
    std::string guard = "__BPFVM_";
    for (const char c : h.path) guard += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
    BPFVM_TRY(write_text(dir + "/" + std::string(h.path),
                         fmt::format("/* {}: its types are the kernel's BTF (linux/kconfig.h); made by bpfvm */\n#ifndef {}\n"
                                     "#define {}\n{}#endif\n", h.path, guard, guard, h.macros)));
  }
  return {};
}

Result<std::string> kernel_headers() {
  const std::string btf_path = "/sys/kernel/btf/vmlinux";
  std::string config_text;
  for (const auto& [k, v] : obj::read_kernel_config()) config_text += k + "=" + v + "\n";
  const std::string key = BPFVM_TRY(tree_key(btf_path, config_text));
  const std::string cache = BPFVM_TRY_CTX(os::user_cache_directory("kernel-headers"), "bpfvm's cache");
  const std::string dir = cache + "/" + key;
  if (os::exists(dir + "/include/linux/kconfig.h")) return dir;
  // Made beside and renamed into place whole, so that a process that starts meanwhile never sees half a
  // tree; when another process's tree got there first, that one is used.
  const std::string part = fmt::format("{}.part-{}", dir, ::getpid());
  std::error_code ec;
  std::filesystem::remove_all(part, ec);
  auto made = write_kernel_headers(btf_path, part);
  if (made && ::rename(part.c_str(), dir.c_str()) != 0 && !os::exists(dir + "/include/linux/kconfig.h")) {
    made = make_error(Errc::kIo, "cannot move {} to {}: {}", part, dir, std::strerror(errno));
  }
  std::filesystem::remove_all(part, ec);
  if (!made) return std::move(made).error();
  return dir;
}

bool machine_has_kernel_headers() {
  struct utsname u {};
  ::uname(&u);
  const std::string kdir = std::string("/lib/modules/") + u.release;
  return os::exists(kdir + "/build/include/linux/kconfig.h") || os::exists(kdir + "/source/include/linux/kconfig.h");
}

}  // namespace bpfvm::bcc
