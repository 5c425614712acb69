#include "owner.hpp"

#include <fmt/format.h>

#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/runtime/registry.hpp"

namespace bpfvm::cli {

namespace {

std::string comm_of(int pid) {
  auto task = attach::read_task(pid);
  return task ? task->comm : std::string();
}

}  // namespace

std::string owner_text(const nlohmann::json& record) {
  if (!runtime::Registry::owner_alive(record) || runtime::Registry::owned_here(record)) return {};
  const int pid = record.value("owner_pid", 0);
  return fmt::format("{}({})", comm_of(pid), pid);
}

ojson owner_json(const nlohmann::json& record) {
  ojson out = ojson::array();
  if (!runtime::Registry::owner_alive(record) || runtime::Registry::owned_here(record)) return out;
  const int pid = record.value("owner_pid", 0);
  out.push_back({{"pid", pid}, {"comm", comm_of(pid)}});
  return out;
}

void print_pins_and_owner(const nlohmann::json& record) {
  if (const auto it = record.find("pins"); it != record.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (p.is_string()) fmt::print("\tpinned {}\n", p.get<std::string>());
    }
  }
  if (const std::string owner = owner_text(record); !owner.empty()) fmt::print("\tpids {}\n", owner);
}

}  // namespace bpfvm::cli
