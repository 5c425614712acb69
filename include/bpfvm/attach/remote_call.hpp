// Calling a function inside another running process, as a debugger's `call` does: ptrace seizes one
// thread, saves its registers, sets up a call (the System V ABI: arguments in rdi, rsi, rdx, rcx, r8,
// r9, an aligned stack below the red zone, a return address of 0), runs it until the return faults at
// 0, and restores the registers, so that the thread resumes where it was (an interrupted syscall is
// restarted by the kernel as after any signal). `bpfvm attach` and `detach` call the agent's entry
// points this way. The thread must not hold a lock the called function takes (as with any debugger's
// call): the calls are made with the thread stopped between instructions, most often in a syscall.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::attach {

class RemoteCall {
 public:
  // Seizes the process's main thread (ptrace; the same user or CAP_SYS_PTRACE) and stops it.
  static Result<std::unique_ptr<RemoteCall>> seize(pid_t pid);
  ~RemoteCall();  // restores the registers and detaches
  RemoteCall(const RemoteCall&) = delete;
  RemoteCall& operator=(const RemoteCall&) = delete;

  // An argument: an integer, or a string copied onto the thread's stack (its address is passed).
  using Arg = std::variant<std::uint64_t, std::string>;
  // Calls the function at `address` (in the process) with `args` (at most 6); its return value (rax).
  Result<std::uint64_t> call(std::uint64_t address, const std::vector<Arg>& args);

  // Stops every other thread of the process (ptrace; they are let go by resume_others or the destructor)
  // and returns where each thread, the seized one too, will resume: its instruction pointer, and, for
  // one stopped in a syscall the kernel will restart, the syscall instruction (2 bytes before).
  Result<std::vector<std::uint64_t>> stop_others();
  void resume_others();

  // Where `function` of the library or executable whose path ends in `file` is mapped in the process
  // (0: not mapped, or no such function).
  Result<std::uint64_t> function_address(const std::string& file, const std::string& function) const;

 private:
  explicit RemoteCall(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool seized_ = false;
  std::vector<std::uint8_t> saved_;  // struct user_regs_struct
  std::vector<int> held_;            // signals that arrived while it was stopped or calling
  std::vector<std::pair<pid_t, std::vector<int>>> others_;  // threads stopped by stop_others, their held signals
};

}  // namespace bpfvm::attach
