// The runtime: bpfvm's "kernel". It creates maps, loads programs (resolving map references, rewriting
// context accesses), hands out ids, keeps an fd table, pins objects under a pin root, and answers the
// kernel's bpf(cmd, attr, size) commands with the kernel's errno values.
//
// Pinning: the pin root (default /run/bpfvm, or $BPFVM_PIN_ROOT) plays /sys/fs/bpf. A path under it,
// or under /sys/fs/bpf (mapped onto it), names a pin; each pin is a file holding what another process
// needs to open the object again. Arrays and hashes (global data included) live in shared memory under
// <pin root>/.maps, and a pin names that memory: every process that opens the pin works on the same map.
// Other map types are pinned as a snapshot of their contents.
#pragma once

#include <linux/bpf.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/maps/perf_event.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/objects.hpp"
#include "bpfvm/runtime/broker.hpp"
#include "bpfvm/runtime/registry.hpp"

namespace bpfvm::runtime {

using AnyObject = std::variant<std::shared_ptr<Map>, std::shared_ptr<Program>, std::shared_ptr<BtfObject>,
                               std::shared_ptr<Link>, std::shared_ptr<maps::PerfEvent>, std::shared_ptr<PerfAttachPoint>>;

struct MapCreateRequest {
  maps::MapDef def;
  std::optional<maps::MapDef> inner;  // map-in-map template
  std::shared_ptr<const BtfObject> btf;
  std::uint32_t btf_key_type_id = 0, btf_value_type_id = 0;
};

struct ProgramLoadRequest {
  std::uint32_t prog_type = 0, expected_attach_type = 0;
  // Tracing programs (fentry/fexit/tp_btf): their target, by its id in the kernel's BTF (as bpf() takes
  // it) or by name as the SEC name gives it ("do_unlinkat", "sched_switch").
  std::uint32_t attach_btf_id = 0;
  std::string attach_target;
  // An extension (BPF_PROG_TYPE_EXT, freplace): the loaded program one of whose global functions it
  // replaces (the kernel's attach_prog_fd), that function by attach_btf_id in the program's BTF.
  std::shared_ptr<const Program> attach_program;
  std::string name, license;
  // Map references as BPF_PSEUDO_MAP_IDX / BPF_PSEUDO_MAP_IDX_VALUE: indexes into `maps` (the kernel's
  // fd_array). bpf() turns BPF_PSEUDO_MAP_FD references into these.
  std::vector<isa::RawInsn> insns;
  std::vector<std::shared_ptr<Map>> maps;
  std::shared_ptr<const BtfObject> btf;
  std::vector<obj::FuncInfo> func_info;
  std::vector<obj::LineInfo> line_info;
  ExecMode mode = default_exec_mode();
  bool jit_harden = default_jit_harden();
  std::uint32_t log_level = 0;  // 1, 2: the verifier's log in the kernel's style, on success too
  // BPF_F_SLEEPABLE (".s" sections): the program may call helpers that sleep (bpf_copy_from_user).
  bool sleepable = false;
  // Reopening an object another process loaded (a pin, an id): the id it has. 0: a new id.
  std::uint32_t id = 0;
};

// Where a user's objects live unless told otherwise: $BPFVM_PIN_ROOT; else root's /run/bpfvm; else the
// user's own $XDG_RUNTIME_DIR/bpfvm, or /tmp/bpfvm-<uid> without one. Each default root is private to
// its owner (0700): users never see, read or change each other's maps, programs, pins or trace pipe;
// root may use any user's objects by naming that user's root (BPFVM_PIN_ROOT), as root may on bpffs.
std::string default_pin_root();
inline constexpr std::string_view kRootPinRoot = "/run/bpfvm";  // root's default

// The directory of the pin root where the memory of its maps, perf buffers and trace pipe lives
// (<pin root>/.maps), made if needed. The kernel's maps are memory: on a pin root whose filesystem
// keeps files on disk (/run where no tmpfs is mounted there, /tmp/bpfvm-<uid> on Debian), the first
// store to each page of a shared file mapping goes through the filesystem (ext4: block allocation
// and its journal) and again after each writeback, which a ring buffer's producers paid on every
// page of every pass. There .maps is a link to a private directory of the user in /dev/shm, named by
// the pin root's path and inode, which names its pin root in a file so that it goes once its pin
// root has gone (remove_unclaimed_storage, run when such a directory is made).
Result<std::string> map_storage_dir(const std::string& pin_root);
// Removes this user's directories in /dev/shm whose pin roots are gone; returns how many.
std::size_t remove_unclaimed_storage();

struct RuntimeOptions {
  std::string pin_root;  // empty: default_pin_root()
  // The fd table's numbers are file descriptors of this process (an eventfd each, close-on-exec, as the
  // kernel's bpf() fds are anon inodes), for the runtime that serves an application's own bpf() calls
  // (interpose): close, dup, fork and fd limits then behave as the kernel's fds do. Otherwise the table
  // is the runtime's own small integers.
  bool real_fds = false;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Result<std::shared_ptr<Map>> create_map(const MapCreateRequest& request);
  // On failure, `log` (when given) receives the reason, as the kernel's verifier log does: for a program
  // the verifier refuses, the explanation (source line, path, registers, hint). With a log_level it
  // also receives the verifier's trace.
  Result<std::shared_ptr<Program>> load_program(ProgramLoadRequest request, std::string* log = nullptr);
  Result<std::shared_ptr<BtfObject>> load_btf(std::span<const std::uint8_t> bytes);
  Result<std::shared_ptr<Link>> create_link(std::shared_ptr<Program> prog, std::uint32_t attach_type,
                                            std::uint32_t target, LinkTarget where = {});

  // Registry: live objects by id.
  std::shared_ptr<Map> map_by_id(std::uint32_t id) const;
  std::shared_ptr<Program> program_by_id(std::uint32_t id) const;
  std::shared_ptr<BtfObject> btf_by_id(std::uint32_t id) const;
  std::shared_ptr<Link> link_by_id(std::uint32_t id) const;
  // The smallest live id greater than `after` of that kind (0 when none).
  std::uint32_t next_id(int kind, std::uint32_t after) const;  // kind: 0 prog, 1 map, 2 btf, 3 link

  // Objects of any process by id (runtime/registry.hpp): this process's own, else opened from the
  // registry: a map in its shared memory (the same live map), a BTF blob, a program loaded again here
  // from its record (a copy that shares the original's id and maps). ENOENT when there is no such id.
  Result<std::shared_ptr<Map>> open_map_by_id(std::uint32_t id);
  Result<std::shared_ptr<Program>> open_program_by_id(std::uint32_t id);
  Result<std::shared_ptr<BtfObject>> open_btf_by_id(std::uint32_t id);
  // The system-wide registry; null when the pin root cannot hold one (then ids are this process's),
  // and registry_error() says why.
  const std::shared_ptr<Registry>& registry();
  const std::optional<Error>& registry_error();

  // Pinning.
  const std::string& pin_root() const { return pin_root_; }
  Result<std::string> pin_file_for(const std::string& path) const;  // the file a pin path names
  Result<void> pin(const std::string& path, const AnyObject& object);
  Result<AnyObject> open_pinned(const std::string& path);

  // The fd table: small integers, as the kernel's. install_fd returns -1 with errno set when it cannot
  // make a descriptor (EMFILE, with real_fds).
  int install_fd(AnyObject object);
  Result<AnyObject> object_for_fd(int fd) const;
  Result<void> close_fd(int fd);  // (closes the descriptor too, with real_fds)
  // With real_fds, for the application's own close and dup of a descriptor: `fd` is no longer this
  // object's (forget_fd); `to` now names what `from` does (alias_fd).
  bool forget_fd(int fd);
  void alias_fd(int from, int to);
  void set_fd(int fd, AnyObject object);  // `fd` now names `object`
  bool owns_fd(int fd) const;
  // A counting perf event the application opened from the kernel (perf_event_open(2) of a CPU clock
  // or a hardware counter, which interposition passes on and notes here): where it counts, so that
  // bpf() may put it in a perf_event_array for bpf_perf_event_read. An fd noted again is another event.
  struct KernelCounter {
    std::int32_t cpu = -1, tid = 0;  // a CPU, or -1 and the thread it counts
    std::uint64_t read_format = 0, opened_ns = 0;
  };
  void note_kernel_counter(int fd, const KernelCounter& counter);
  // The counter `fd` is, while it is still a perf event's descriptor.
  std::optional<KernelCounter> kernel_counter(int fd) const;

  // A program attached to a perf event (BPF_LINK_CREATE with BPF_PERF_EVENT, PERF_EVENT_IOC_SET_BPF):
  // a link to the event's target, with `cookie` (bpf_get_attach_cookie). EINVAL when the program's
  // type cannot run there (a tracepoint needs a tracepoint program, a uprobe a kprobe program).
  Result<std::shared_ptr<Link>> link_perf_event(std::shared_ptr<Program> prog, const PerfAttachPoint& point,
                                                std::uint64_t cookie);

  // perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT) on `cpu`, with `data_pages` pages of
  // ring buffer (a power of 2): an fd that BPF_MAP_UPDATE_ELEM puts in a perf_event_array. The buffer is
  // a file under <pin root>/.maps so that programs of other processes can write to it.
  Result<int> open_perf_event(std::uint32_t cpu, std::size_t data_pages);
  // The same event, not in the fd table.
  Result<std::shared_ptr<maps::PerfEvent>> make_perf_event(std::uint32_t cpu, std::size_t data_pages);

  // The trace pipe (<pin root>/.maps/.trace_pipe): a ring buffer of bpf_trace_printk lines in the kernel's
  // trace_pipe format, shared by every process on this pin root; `bpfvm prog tracelog` reads it.
  Result<std::shared_ptr<maps::RingBuffer>> trace_pipe();

  // The kernel's bpf() system call: returns a value >= 0, or -1 with errno set to the kernel's code.
  long bpf(int cmd, union bpf_attr* attr, unsigned int size);

 private:
  std::uint32_t new_id(int kind);
  // Creates the pin root (a default one private to its owner: os::make_private_directory).
  Result<void> prepare_pin_root() const;
  // Writes the record of an object into the registry (unless another live process owns that id) and
  // returns the token that removes it when the object goes.
  std::shared_ptr<void> publish(ObjectKind kind, std::uint32_t id, const nlohmann::json& record, bool fresh);
  Result<std::shared_ptr<BtfObject>> load_btf_as(std::span<const std::uint8_t> bytes, std::uint32_t id);
  // The BTF object a registry record names, or its copy in the record when it is gone.
  Result<std::shared_ptr<BtfObject>> open_btf_for(const nlohmann::json& record);
  // Gives a map made or opened elsewhere an id here and wraps it with its BTF.
  Result<std::shared_ptr<Map>> register_map(std::shared_ptr<maps::Map> impl, const MapCreateRequest& request);
  template <typename T>
  std::shared_ptr<T> find(int kind, std::uint32_t id) const;
  friend class PinCodec;

  std::string pin_root_;
  mutable std::mutex mutex_;
  std::uint32_t next_ids_[4] = {1, 1, 1, 1};
  std::map<std::uint32_t, std::weak_ptr<void>> registry_[4];
  std::map<int, AnyObject> fds_;
  std::map<int, KernelCounter> kernel_counters_;
  int next_fd_ = 3;
  bool real_fds_ = false;
  std::map<std::string, AnyObject> pinned_;  // pins made by this process keep their objects alive
  std::shared_ptr<maps::RingBuffer> trace_pipe_;
  std::shared_ptr<Registry> system_;
  std::unique_ptr<Broker> broker_;  // (a root loader's, from its first link: broker.hpp)
  std::optional<Error> system_error_;
  bool system_tried_ = false;
  bool default_root_ = false;  // pin_root_ is default_pin_root() without $BPFVM_PIN_ROOT: kept private
};

}  // namespace bpfvm::runtime
