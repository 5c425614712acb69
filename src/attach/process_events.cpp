// The records of the process events (see syscall_probes.hpp): the scheduler's sched_process_exec, _fork
// and _exit tracepoints, as the running kernel lays them out. The layout changed over time (Linux 6.10
// made fork's comms __data_loc strings; exit gained group_dead), so it is read from tracefs's format
// file when bpfvm can read it, by field name, and otherwise is this kernel generation's.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/attach/syscall_probes.hpp"

namespace bpfvm::attach {

namespace {

struct Field {
  std::string name;
  std::uint32_t offset = 0, size = 0;
  bool data_loc = false;  // a __data_loc string: (length << 16 | offset) here, the bytes after the fields
};
struct Format {
  std::uint16_t id = 0;
  std::vector<Field> fields;  // but the common_ ones
  std::uint32_t end = 0;      // where the strings go
};

// Linux 6.18's layouts (/sys/kernel/tracing/events/sched/*/format).
Format builtin(ProcessEvent e) {
  Format f;
  switch (e) {
    case ProcessEvent::kExec:
      f.fields = {{"filename", 8, 4, true}, {"pid", 12, 4, false}, {"old_pid", 16, 4, false}};
      break;
    case ProcessEvent::kFork:
      f.fields = {{"parent_comm", 8, 4, true}, {"parent_pid", 12, 4, false}, {"child_comm", 16, 4, true},
                  {"child_pid", 20, 4, false}};
      break;
    case ProcessEvent::kExit:
      f.fields = {{"comm", 8, 16, false}, {"pid", 24, 4, false}, {"prio", 28, 4, false}, {"group_dead", 32, 1, false}};
      break;
    case ProcessEvent::kNone: break;
  }
  for (const Field& x : f.fields) f.end = std::max(f.end, x.offset + x.size);
  return f;
}

// "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;"
bool parse_field(std::string_view line, Field& out) {
  const std::size_t field = line.find("field:");
  const std::size_t semi = line.find(';');
  if (field == std::string_view::npos || semi == std::string_view::npos || semi < field) return false;
  std::string_view decl = line.substr(field + 6, semi - field - 6);
  out.data_loc = decl.starts_with("__data_loc");
  std::string_view name = decl.substr(decl.rfind(' ') + 1);
  if (const std::size_t bracket = name.find('['); bracket != std::string_view::npos) name = name.substr(0, bracket);
  out.name = std::string(name);
  unsigned offset = 0, size = 0;
  const std::size_t o = line.find("offset:"), z = line.find("size:");
  if (o == std::string_view::npos || z == std::string_view::npos) return false;
  if (std::sscanf(std::string(line.substr(o)).c_str(), "offset:%u", &offset) != 1) return false;
  if (std::sscanf(std::string(line.substr(z)).c_str(), "size:%u", &size) != 1) return false;
  out.offset = offset;
  out.size = size;
  return true;
}

Format from_tracefs(ProcessEvent e) {
  const char* name = e == ProcessEvent::kExec ? "sched_process_exec" : e == ProcessEvent::kFork ? "sched_process_fork"
                                                                                                : "sched_process_exit";
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    const std::string path = std::string(root) + "/events/sched/" + name + "/format";
    FILE* file = std::fopen(path.c_str(), "re");
    if (!file) continue;
    Format f;
    char buf[512];
    bool ok = true;
    while (std::fgets(buf, sizeof buf, file)) {
      const std::string_view line(buf);
      unsigned id = 0;
      if (std::sscanf(buf, "ID: %u", &id) == 1) f.id = static_cast<std::uint16_t>(id);
      if (line.find("field:") == std::string_view::npos) continue;
      Field x;
      if (!parse_field(line, x)) {
        ok = false;
        break;
      }
      if (x.name.starts_with("common_")) continue;
      if (x.offset + x.size > runtime::kTracepointRecordMax / 2) ok = false;
      f.end = std::max(f.end, x.offset + x.size);
      f.fields.push_back(std::move(x));
    }
    std::fclose(file);
    if (ok && !f.fields.empty()) return f;
  }
  return builtin(e);
}

// Kept for the process's life, never destroyed: an exit event comes after static destructors ran.
const Format& format_of(ProcessEvent e) {
  static std::once_flag once[4];
  static Format* const formats = new Format[4];
  const auto i = static_cast<std::size_t>(e);
  std::call_once(once[i], [&] { formats[i] = from_tracefs(e); });
  return formats[i];
}

}  // namespace

void make_process_record(const SyscallStop& stop, std::uint8_t* out, std::size_t size) {
  const Format& f = format_of(stop.event);
  std::memset(out, 0, std::min<std::size_t>(size, 512));
  const helpers::Task& task = *stop.task;
  std::memcpy(out, &f.id, 2);
  const auto common_pid = static_cast<std::int32_t>(task.pid);
  std::memcpy(out + 4, &common_pid, 4);
  std::uint32_t dyn = f.end;
  for (const Field& x : f.fields) {
    // The value of each field by its name, as the kernel's TP_fast_assign sets it.
    std::string_view text;
    bool is_text = true;
    std::int64_t number = 0;
    if (x.name == "filename") text = stop.filename ? stop.filename : "";
    else if (x.name == "comm" || x.name == "parent_comm") text = std::string_view(task.comm, strnlen(task.comm, sizeof task.comm));
    else if (x.name == "child_comm" && stop.child) text = std::string_view(stop.child->comm, strnlen(stop.child->comm, sizeof stop.child->comm));
    else {
      is_text = false;
      if (x.name == "pid" || x.name == "parent_pid") number = task.pid;
      else if (x.name == "old_pid") number = stop.old_pid;
      else if (x.name == "child_pid" && stop.child) number = stop.child->pid;
      else if (x.name == "prio") number = stop.prio;
      else if (x.name == "group_dead") number = stop.group_dead;
    }
    if (x.offset + x.size > size) continue;
    if (is_text && x.data_loc) {
      const std::size_t len = std::min<std::size_t>(text.size() + 1, 4096);
      if (dyn + len > size || x.size != 4) continue;
      std::memcpy(out + dyn, text.data(), len - 1);
      out[dyn + len - 1] = 0;
      const std::uint32_t loc = static_cast<std::uint32_t>(len) << 16 | dyn;
      std::memcpy(out + x.offset, &loc, 4);
      dyn += static_cast<std::uint32_t>(len);
    } else if (is_text) {
      std::memcpy(out + x.offset, text.data(), std::min<std::size_t>(text.size(), x.size - 1));
    } else if (x.size <= 8) {
      std::memcpy(out + x.offset, &number, x.size);  // little-endian: the low bytes
    }
  }
}

}  // namespace bpfvm::attach
