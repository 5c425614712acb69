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

}  // namespace bpfvm::cli
