// The process's server, started by libbpfvm-agent.so's constructor under `bpfvm run` and made the
// agent's syscall server.
#include <cstdio>

#include "bpfvm/agent/agent.hpp"
#include "bpfvm/interpose/server.hpp"

namespace bpfvm::interpose {

namespace {

Server* g_server = nullptr;  // made once, never destroyed: the application's syscalls come here until exit

bool serve(std::uint64_t nr, const std::uint64_t* args, std::int64_t* rax) { return g_server->serve(nr, args, rax); }

}  // namespace

Result<void> start(const ServerOptions& options) {
  if (g_server) return {};
  agent::OwnSyscalls own;  // (its files are bpfvm's, not the application's opens)
  ServerOptions o = options;
  o.route = [](int nr) { agent::serve_syscall(nr); };
  o.own_thread = [] { agent::mark_own_thread(); };
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
