#include "owner.hpp"

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/runtime/registry.hpp"

namespace bpfvm::cli {

namespace {

std::string comm_of(int pid) {
  auto text = os::read_text_file(fmt::format("/proc/{}/comm", pid));
  if (!text) return {};
  std::string c = *text;
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
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
