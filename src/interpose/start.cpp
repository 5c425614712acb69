// The process's server, started by libbpfvm-agent.so's constructor under `bpfvm run` and made the
// agent's syscall server.
#include <unistd.h>

#include <cstdio>

#include "bpfvm/agent/agent.hpp"
#include "bpfvm/interpose/server.hpp"
#include "bpfvm/maps/map.hpp"

namespace bpfvm::interpose {

namespace {

Server* g_server = nullptr;  // made once, never destroyed: the application's syscalls come here until exit

bool serve(std::uint64_t nr, const std::uint64_t* args, std::int64_t* rax) { return g_server->serve(nr, args, rax); }

// The application exits: its objects go as the kernel's go with their last descriptor, so the shared
// storage it made goes too (but what a pin names). One that dies without this is swept by the next
// server that starts (Server::create).
__attribute__((destructor)) void remove_own_storage() {
  if (!g_server) return;
  agent::OwnSyscalls own;
  maps::remove_orphaned_storage(g_server->runtime().pin_root() + "/.maps", static_cast<int>(::getpid()));
}

}  // namespace

Result<void> start(const ServerOptions& options) {
  if (g_server) return {};
  agent::OwnSyscalls own;  // (its files are bpfvm's, not the application's opens)
  ServerOptions o = options;
  o.route = [](int nr) { agent::serve_syscall(nr); };
  o.own_thread = [] { agent::mark_own_thread(); };
  o.read_own = &agent::read_own_memory;
  auto server = Server::create(std::move(o));
  if (!server) return std::move(server).error();
  g_server = server->release();
  agent::set_syscall_server(&serve);
  return {};
}

}  // namespace bpfvm::interpose

// libbpfvm-agent.so's constructor calls this (a weak reference in src/agent/preload.cpp) when
// $BPFVM_SERVE=1: 0, or -1 when the server could not start (the reason on stderr).
extern "C" int bpfvm_interpose_start(const char* pin_root, int verbose) {
  bpfvm::interpose::ServerOptions options;
  options.pin_root = pin_root ? pin_root : "";
  options.verbose = verbose != 0;
  if (auto r = bpfvm::interpose::start(options); !r) {
    std::fprintf(stderr, "bpfvm: serving bpf() here: %s\n", r.error().to_string().c_str());
    return -1;
  }
  return 0;
}
