// Registry files for processes in scope that can no longer open them.
//
// A process joins a scope as the user who made it: its agent opens the loader's pin root, private to
// that user. A process that then becomes another user and execs (su, sudo -u, setpriv, a service
// dropping its privileges) starts a new image whose agent, as the new user, cannot open the pin root;
// the kernel keeps delivering that process's events to the tool all the same. So each loader run by
// root that holds links runs a broker: a thread on an abstract unix socket named
// "@bpfvm-broker:PIN_ROOT:PID" (found in /proc/net/unix), which opens what such an agent asks for and
// passes the descriptor back (SCM_RIGHTS), after two checks:
//  - the caller is in scope: it, or an ancestor, has a live agent record in the registry (it joined
//    before it changed users; a process's record outlives its exec, same pid and start time);
//  - the request is one an agent makes: the registry's records read-only (its own agent record also
//    created, renamed and removed), the ids page, map memory, program profiles and the trace pipe
//    read-write, the pin root's directories read and stat'ed. Nothing is created but its own record.
// The agent turns to a broker only for its own syscalls that the pin root refuses (agent.cpp).
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bpfvm/base/result.hpp"

namespace bpfvm::runtime {

class Registry;

class Broker {
 public:
  // Listens for the agents of `pin_root`'s scope; the thread ends with the object.
  static Result<std::unique_ptr<Broker>> start(std::string pin_root, std::shared_ptr<Registry> registry);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

 private:
  Broker() = default;
  void serve();
  void answer(int connection);

  std::string pin_root_;
  std::shared_ptr<Registry> registry_;
  int listener_ = -1, stop_ = -1;
  std::thread thread_;
};

enum class BrokerOp : std::uint32_t { kOpen = 1, kStat = 2, kMkdir = 3, kRename = 4, kUnlink = 5 };

// The agent's side: asks a broker of `pin_root` to do `op` on `path` (and `to`, for a rename). The
// result as a syscall's: a descriptor (kOpen) or 0, else -errno; `st` filled by kStat. nullopt when no
// broker of that pin root answers.
std::optional<std::int64_t> broker_request(const std::string& pin_root, BrokerOp op, const char* path, int flags,
                                           unsigned mode, const char* to = nullptr, struct stat* st = nullptr);
// Whether some broker of `pin_root` listens.
bool broker_listening(const std::string& pin_root);

}  // namespace bpfvm::runtime
