// bpfvm feature probe: what bpfvm supports, in bpftool's wording, found as bpftool finds it on a
// kernel: by loading a minimal program of each type and creating a small map of each type (in a
// private pin root, so nothing is left behind), and by each type's helper list.
#include <linux/bpf.h>
#include <linux/btf.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "bpfvm/base/process.hpp"
#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/maps/map.hpp"
#include "bpfvm/maps/object_map.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "command.hpp"
#include "json_output.hpp"

namespace bpfvm::cli {

namespace {

bool probe_prog(runtime::Runtime& rt, std::uint32_t type) {
  runtime::ProgramLoadRequest req;
  req.prog_type = type;
  req.license = "GPL";
  req.name = "probe";
  req.insns = {isa::RawInsn{0xb7, 0, 0, 0, 0}, isa::RawInsn{0x95, 0, 0, 0, 0}};  // r0 = 0; exit
  req.sleepable = type == BPF_PROG_TYPE_SYSCALL;  // (libbpf's probe too: syscall programs must be)
  if (type == BPF_PROG_TYPE_STRUCT_OPS) {
    // libbpf's probe: a struct_ops program needs a kernel struct_ops type; asked to attach to type 1,
    // which is none, a kernel that has the program type says exactly that.
    req.attach_btf_id = 1;
    auto r = rt.load_program(std::move(req));
    return !r && r.error().message().find("is not a supported struct") != std::string::npos;
  }
  return static_cast<bool>(rt.load_program(std::move(req)));
}

// The BTF a local storage needs for its key and value, as libbpf's probe loads it: [1] int,
// [2] struct val { int cnt; int pad; } (8 bytes).
std::shared_ptr<runtime::BtfObject> storage_btf(runtime::Runtime& rt) {
  static constexpr std::uint32_t kTypes[] = {
      1, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,  // [1] int
      5, (BTF_KIND_STRUCT << 24) | 2, 8, 9, 1, 0, 13, 1, 32,  // [2] struct val: cnt at bit 0, pad at bit 32
  };
  static constexpr char kStrings[] = "\0int\0val\0cnt\0pad";
  btf_header h{};
  h.magic = BTF_MAGIC;
  h.version = BTF_VERSION;
  h.hdr_len = sizeof h;
  h.type_len = sizeof kTypes;
  h.str_off = sizeof kTypes;
  h.str_len = sizeof kStrings;
  std::vector<std::uint8_t> blob(sizeof h + sizeof kTypes + sizeof kStrings);
  std::memcpy(blob.data(), &h, sizeof h);
  std::memcpy(blob.data() + sizeof h, kTypes, sizeof kTypes);
  std::memcpy(blob.data() + sizeof h + sizeof kTypes, kStrings, sizeof kStrings);
  auto btf = rt.load_btf(blob);
  return btf ? *btf : nullptr;
}

bool probe_map(runtime::Runtime& rt, std::uint32_t type) {
  if (type == BPF_MAP_TYPE_STRUCT_OPS) {
    // libbpf's probe: a value type id that is no struct_ops type; the kernel that has struct_ops maps
    // answers ENOTSUPP (524), and one that has none EINVAL.
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = a.value_size = 4;
    a.max_entries = 1;
    a.btf_vmlinux_value_type_id = 1;
    return rt.bpf(BPF_MAP_CREATE, &a, sizeof a) < 0 && errno == 524;
  }
  runtime::MapCreateRequest req;
  req.def.type = type;
  req.def.name = "probe";
  req.def.key_size = 4;
  req.def.value_size = 4;
  req.def.max_entries = 1;
  switch (type) {
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK:
    case BPF_MAP_TYPE_BLOOM_FILTER: req.def.key_size = 0; break;
    case BPF_MAP_TYPE_RINGBUF:
    case BPF_MAP_TYPE_USER_RINGBUF:
      req.def.key_size = req.def.value_size = 0;
      req.def.max_entries = 4096;
      break;
    case BPF_MAP_TYPE_LPM_TRIE:
      req.def.key_size = 8;
      req.def.map_flags = BPF_F_NO_PREALLOC;
      break;
    case BPF_MAP_TYPE_STACK_TRACE: req.def.value_size = 8; break;  // one frame (a multiple of 8, as the kernel asks)
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS: req.inner = maps::MapDef{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "inner"}; break;
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      req.def.key_size = sizeof(bpf_cgroup_storage_key);
      req.def.max_entries = 0;
      break;
    default:
      if (maps::ObjectMap::is_local_storage(type)) {  // BTF for key and value, no preallocation, no max
        req.btf = storage_btf(rt);
        req.btf_key_type_id = 1;
        req.btf_value_type_id = 2;
        req.def.value_size = 8;
        req.def.max_entries = 0;
        req.def.map_flags = BPF_F_NO_PREALLOC;
      }
      break;
  }
  return static_cast<bool>(rt.create_map(req));
}

}  // namespace

int cmd_feature(Args& args) {
  const std::string_view sub = args.next();
  if (!sub.empty() && sub != "probe") throw UsageError{fmt::format("unknown feature command '{}'", sub), true};
  // bpftool's targets: kernel (the default), dev NAME; bpfvm has one.
  if (!args.empty() && args.peek() == "kernel") args.next();
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after feature probe", args.peek())};
  auto dir = os::TempDirectory::create("bpfvm-probe-");
  if (!dir) {
    fmt::print(stderr, "Error: {}\n", dir.error().to_string());
    return kExitError;
  }
  runtime::Runtime rt(runtime::RuntimeOptions{dir->path()});
  const bool json = output_format().json;
  ojson out;
  std::string text;
  text += "Scanning system call availability...\nbpf() syscall is available\n\n";
  out["syscall_config"] = {{"have_bpf_syscall", true}};

  text += "Scanning eBPF program types...\n";
  std::vector<std::uint32_t> prog_types;
  ojson progs = ojson::object();
  for (std::uint32_t t = 1; t < 64; ++t) {
    const std::string_view name = obj::prog_type_name(t);
    if (name.empty()) break;
    const bool ok = probe_prog(rt, t);
    if (ok) prog_types.push_back(t);
    text += fmt::format("eBPF program_type {} is {}available\n", name, ok ? "" : "NOT ");
    progs[fmt::format("have_{}_prog_type", name)] = ok;
  }
  out["program_types"] = progs;

  text += "\nScanning eBPF map types...\n";
  ojson map_types = ojson::object();
  for (std::uint32_t t = 1; t < 64; ++t) {
    const std::string_view name = maps::map_type_name(t);
    if (name.empty()) break;
    const bool ok = probe_map(rt, t);
    text += fmt::format("eBPF map_type {} is {}available\n", name, ok ? "" : "NOT ");
    map_types[fmt::format("have_{}_map_type", name)] = ok;
  }
  out["map_types"] = map_types;

  text += "\nScanning eBPF helper functions...\n";
  ojson helper_lists = ojson::object();
  for (std::uint32_t t : prog_types) {
    const std::string_view name = obj::prog_type_name(t);
    text += fmt::format("eBPF helpers supported for program type {}:", name);
    ojson list = ojson::array();
    for (std::int64_t id = 1; id < 256; ++id) {
      const helpers::Prototype* proto = helpers::find_prototype(id);
      // (as bpftool finds helpers, by loading a program that calls each: one bpfvm cannot run fails to load)
      if (!proto || !helpers::allowed(t, id) || !helpers::implemented(id)) continue;
      text += fmt::format("\n\t- bpf_{}", proto->name);
      list.push_back(fmt::format("bpf_{}", proto->name));
    }
    if (list.empty()) text += "\n\tNo helpers supported";
    text += "\n";
    helper_lists[fmt::format("{}_available_helpers", name)] = list;
  }
  out["helpers"] = helper_lists;

  text += "\nScanning miscellaneous eBPF features...\n"
          "Large program size limit is available\nBounded loop support is available\n"
          "ISA extension v2 is available\nISA extension v3 is available\nISA extension v4 is available\n";
  out["misc"] = {{"have_large_insn_limit", true},
                 {"have_bounded_loops", true},
                 {"have_v2_isa_extension", true},
                 {"have_v3_isa_extension", true},
                 {"have_v4_isa_extension", true}};
  if (json) print_json(out);
  else fmt::print("{}", text);
  return kExitOk;
}

}  // namespace bpfvm::cli
