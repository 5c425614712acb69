// bpf_timer (kernel/bpf/helpers.c): a struct bpf_timer in a map value, which a program initialises
// (bpf_timer_init), gives a callback of its own (bpf_timer_set_callback) and starts (bpf_timer_start);
// when it expires, the callback runs with the map, the element's key and its value, outside any run of
// the program (the kernel runs it from an hrtimer, in softirq context).
//
// In bpfvm the timer's state is in the value itself, in the map's shared memory, so that every process
// that maps the map sees it: bpf_timer_cancel in one process stops a timer another started, and an
// update of the element frees it (maps::Map::free_special_fields). Its 16 bytes:
//   word 0: 0 while not initialised; else the clock (bits 4-7), whether a callback is set (bit 1) and
//           which one: its instruction (bits 8-31) in the program with the id in bits 32-63;
//   word 1: which start is pending (the starting process's pid in bits 32-63, a number of its own
//           below), 0 when none is: a pending expiry fires only if it is still the one there.
// An expiry fires in a thread of the process that started the timer ("bpfvm-timers", made when a
// program that uses timers is loaded: prepare_timers), while that process runs: the kernel keeps a timer as long as its map has
// users, bpfvm as long as the process that started it does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bpfvm/base/result.hpp"

namespace bpfvm::maps {
class Map;
}

namespace bpfvm::helpers {

// What a timer needs of the program that runs (the runtime's Program, through RunEnv::program).
class TimerProgram {
 public:
  virtual std::uint32_t timer_program_id() const = 0;
  // The map of this program's whose values hold [addr, addr + size) (a struct bpf_timer); null when none.
  virtual maps::Map* timer_map(const void* addr, std::size_t size) const = 0;
  // Runs the program's function at instruction `pc` with r1-r5 on the calling thread, as the task.
  virtual Result<std::uint64_t> run_timer_callback(std::uint32_t pc, const std::uint64_t (&args)[5]) const = 0;
  // The program, kept alive while a timer may call it (the kernel's timer holds a reference to its
  // callback's program); null when it is not shared.
  virtual std::shared_ptr<const TimerProgram> keep_for_timer() const = 0;

 protected:
  ~TimerProgram() = default;
};

// Made when a program that sets or starts timers is loaded: this process's timer thread, room in its
// queue, and the program known by id. A start inside a run then allocates nothing (unless more timers are
// pending than there is room for), as a run may be on a thread that holds malloc's lock (the agent runs
// programs at the process's own syscalls, malloc's mmap and brk among them).
void prepare_timers(const TimerProgram& program);

// What an embedder changes in this process's timers (the agent, inside a traced process): what the timer
// thread calls first (the agent marks it as its own: its syscalls are not the process's), and where a
// callback's failure is reported (stderr when not set; the agent's report, which a traced process's
// stderr sees only when asked for).
// With `embedder_starts_thread`, neither a load nor a start makes the timer thread: the embedder calls
// start_timer_thread() where a new thread harms nothing (the agent: its watcher, after patching the
// process's syscall instructions, which needs the process to have no other thread); expiries wait
// in the queue until then.
struct TimerHooks {
  void (*thread_start)() = nullptr;
  void (*report)(const std::string& what) = nullptr;
  bool embedder_starts_thread = false;
};
void set_timer_hooks(const TimerHooks& hooks);
// Makes this process's timer thread if a program that sets or starts timers was loaded and it has none.
void start_timer_thread();

}  // namespace bpfvm::helpers
