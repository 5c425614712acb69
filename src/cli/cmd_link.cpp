// bpfvm link { show | list } [id LINK_ID] and bpfvm perf [{ show | list }]: what is attached where, in
// every bpfvm process (the registry's link records: bpfvm trace makes one per attached program).
#include <linux/bpf.h>

#include <fmt/format.h>

#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"
#include "owner.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::cli {

namespace {

std::string link_type(const nlohmann::json& r) {
  const std::string kind = r.value("kind", "");
  if (kind == "fentry" || kind == "fexit") return "tracing";
  return kind == "raw_tracepoint" || kind == "tp_btf" ? "raw_tracepoint" : "perf_event";
}

Result<std::vector<nlohmann::json>> links(runtime::Runtime& rt) {
  const auto registry = BPFVM_TRY(open_registry(rt));
  return registry->list(runtime::ObjectKind::kLink);
}

}  // namespace

int cmd_link(Args& args) {
  const std::string_view sub = args.next();
  if (!sub.empty() && sub != "show" && sub != "list") {
    throw UsageError{fmt::format("unknown link command '{}'", sub), true};
  }
  const std::optional<std::uint32_t> only = parse_optional_id(args, "link");
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
  runtime::Runtime rt;
  ojson all = ojson::array();
  bool found = false;
  const auto records = links(rt);
  if (!records) return fail(records.error());
  for (const auto& r : *records) {
    const std::uint32_t id = r.value("id", 0u);
    if (only && id != *only) continue;
    found = true;
    const std::string kind = r.value("kind", ""), name = r.value("name", "");
    // A uprobe (USDT sites are uprobes, as libbpf attaches them): what bpftool shows of a perf_event
    // link on a uprobe, its file and offset, cookie and semaphore (ref_ctr_offset).
    const nlohmann::json* u = r.contains("uprobe") ? &r.at("uprobe") : nullptr;
    const bool ret = kind == "uretprobe";
    const std::uint64_t cookie = r.value("cookie", std::uint64_t{0});
    if (output_format().json) {
      ojson j{{"id", id}, {"type", link_type(r)}, {"prog_id", r.value("prog_id", 0u)}};
      if (u) {
        j["retprobe"] = ret;
        j["file"] = u->value("path", std::string());
        j["offset"] = u->value("offset", std::uint64_t{0});
        j["cookie"] = cookie;
        j["ref_ctr_offset"] = u->value("ref_ctr_offset", std::uint64_t{0});
      } else if (kind == "kprobe" || kind == "kretprobe") {
        j["retprobe"] = kind == "kretprobe";
        j["func"] = name;
        j["offset"] = 0;
        j["cookie"] = cookie;
      } else if (kind == "fentry" || kind == "fexit") {  // bpftool's tracing link, and the function by name
        j["prog_type"] = "tracing";
        j["attach_type"] = kind == "fentry" ? "trace_fentry" : "trace_fexit";
        j["func"] = name;
      } else if (kind == "raw_tracepoint" || kind == "tp_btf") j["tp_name"] = name;
      else j["tracepoint"] = name;
      j["target_pid"] = r.value("pid", 0u);
      j["pids"] = owner_json(r);
      all.push_back(j);
      continue;
    }
    fmt::print("{}: {}  prog {}\n", id, link_type(r), r.value("prog_id", 0u));
    if (u) {
      fmt::print("\t{} {}+{:#x}  ", ret ? "uretprobe" : "uprobe", u->value("path", std::string()),
                 u->value("offset", std::uint64_t{0}));
      if (cookie) fmt::print("cookie {}  ", cookie);
      if (const std::uint64_t ref = u->value("ref_ctr_offset", std::uint64_t{0})) fmt::print("ref_ctr_offset {:#x}  ", ref);
      fmt::print("\n");
    } else if (kind == "kprobe" || kind == "kretprobe") {  // bpftool: "kprobe FUNC+OFFSET"
      fmt::print("\t{} {}+0x0  ", kind, name);
      if (cookie) fmt::print("cookie {}  ", cookie);
      fmt::print("target_pid {}\n", r.value("pid", 0u));
    } else if (kind == "fentry" || kind == "fexit") {
      fmt::print("\tprog_type tracing  attach_type {}  func {}  target_pid {}\n",
                 kind == "fentry" ? "trace_fentry" : "trace_fexit", name, r.value("pid", 0u));
    } else if (kind == "raw_tracepoint" || kind == "tp_btf") {
      fmt::print("\ttp '{}'  target_pid {}\n", name, r.value("pid", 0u));
    }
    else fmt::print("\ttracepoint {}  target_pid {}\n", name, r.value("pid", 0u));
    if (const std::string owner = owner_text(r); !owner.empty()) fmt::print("\tpids {}\n", owner);
  }
  if (only && !found) {
    fmt::print(stderr, "Error: get by id ({}): No such file or directory\n", *only);
    return kExitError;
  }
  if (output_format().json) print_json(only ? all[0] : all);
  return kExitOk;
}

// bpftool perf lists the perf events (tracepoints, kprobes) programs are attached to, by the process
// that holds them: here the bpfvm process that attached them, its link id in place of an fd, and the
// process it traces.
int cmd_perf(Args& args) {
  const std::string_view sub = args.next();
  if (!sub.empty() && sub != "show" && sub != "list") throw UsageError{fmt::format("unknown perf command '{}'", sub), true};
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after perf {}", args.peek(), sub)};
  runtime::Runtime rt;
  ojson all = ojson::array();
  const auto found = links(rt);
  if (!found) return fail(found.error());
  for (const auto& r : *found) {
    const int pid = r.value("owner_pid", 0);
    const std::string kind = r.value("kind", "tracepoint"), name = r.value("name", "");
    const std::string event = name.substr(name.find('/') == std::string::npos ? 0 : name.find('/') + 1);
    if (r.contains("uprobe")) {  // bpftool: "uprobe  filename PATH  offset N"
      const auto& u = r.at("uprobe");
      const std::string type = kind == "uretprobe" ? "uretprobe" : "uprobe";
      if (output_format().json) {
        all.push_back({{"pid", pid}, {"link_id", r.value("id", 0u)}, {"prog_id", r.value("prog_id", 0u)},
                       {"fd_type", type}, {"filename", u.value("path", std::string())},
                       {"offset", u.value("offset", std::uint64_t{0})}});
      } else {
        fmt::print("pid {}  link {}: prog_id {}  {}  filename {}  offset {}\n", pid, r.value("id", 0u),
                   r.value("prog_id", 0u), type, u.value("path", std::string()), u.value("offset", std::uint64_t{0}));
      }
      continue;
    }
    if (kind == "kprobe" || kind == "kretprobe") {  // bpftool: "kprobe  func NAME  offset N"
      if (output_format().json) {
        all.push_back({{"pid", pid}, {"link_id", r.value("id", 0u)}, {"prog_id", r.value("prog_id", 0u)},
                       {"fd_type", kind}, {"func", name}, {"offset", 0}});
      } else {
        fmt::print("pid {}  link {}: prog_id {}  {}  func {}  offset 0\n", pid, r.value("id", 0u), r.value("prog_id", 0u),
                   kind, name);
      }
      continue;
    }
    if (output_format().json) {
      all.push_back({{"pid", pid}, {"link_id", r.value("id", 0u)}, {"prog_id", r.value("prog_id", 0u)},
                     {"fd_type", kind}, {kind == "raw_tracepoint" ? "raw_tracepoint" : "tracepoint", event},
                     {"target_pid", r.value("pid", 0u)}});
      continue;
    }
    fmt::print("pid {}  link {}: prog_id {}  {}  {}  target_pid {}\n", pid, r.value("id", 0u), r.value("prog_id", 0u),
               kind, event, r.value("pid", 0u));
  }
  if (output_format().json) print_json(all);
  return kExitOk;
}

}  // namespace bpfvm::cli
