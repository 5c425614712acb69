// bpfvm map ...: bpftool's map commands on the maps of every bpfvm process (through the system-wide
// registry and the maps' shared memory: a dump reads the live map another process is updating).
//   map { show | list } [MAP]
//   map create FILE type TYPE key KEY_SIZE value VALUE_SIZE entries MAX_ENTRIES name NAME [flags FLAGS]
//              [inner_map MAP]
//   map dump MAP | lookup MAP [key DATA] | getnext MAP [key DATA] | delete MAP key DATA
//   map update MAP [key DATA] [value VALUE] [UPDATE_FLAGS] | pin MAP FILE | freeze MAP
//   map peek MAP | push MAP value VALUE | pop MAP | enqueue MAP value VALUE | dequeue MAP
//   MAP := { id MAP_ID | pinned FILE | name MAP_NAME }   DATA := { [hex] BYTES }
//   VALUE := { DATA | MAP }   UPDATE_FLAGS := { any | exist | noexist }
// Output as bpftool's: hex "key: .. value: .." lines without BTF, BTF-formatted JSON with it; -j/-p JSON.
#include <linux/bpf.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/obj/btf_value.hpp"
#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"
#include "owner.hpp"

namespace bpfvm::cli {

namespace {

bool is_percpu(std::uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// bpftool's fprint_hex: bytes separated by spaces, an extra space after every eighth.
std::string hex_line(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) out += (i % 8 == 0) ? "  " : " ";
    out += fmt::format("{:02x}", bytes[i]);
  }
  return out;
}

// A missing key (lookup, peek) or an empty queue (pop): not an "Error:" line in bpftool, but its own
// text on stdout (JSON null under -j), and the exit code of ENOENT.
int not_found(bool lookup, std::span<const std::uint8_t> key) {
  if (output_format().json) print_json(ojson(nullptr));
  else if (lookup) fmt::print("key:\n{}\n\nNot found\n", hex_line(key));
  else fmt::print("Error: empty map\n");
  return exit_errno(make_error(Errc::kNotFound, "not found"));
}

// A command that succeeded with nothing to say: bpftool prints JSON null under -j.
int done() {
  if (output_format().json) print_json(nullptr);
  return kExitOk;
}

ojson hex_array(std::span<const std::uint8_t> bytes) {
  ojson a = ojson::array();
  for (std::uint8_t b : bytes) a.push_back(fmt::format("0x{:02x}", b));
  return a;
}

// DATA := { [hex] BYTES }: each byte a number (base 0: 0x.., 0.., decimal), or hex digits after "hex".
std::vector<std::uint8_t> parse_data(Args& args, std::size_t want, std::string_view what) {
  bool hex = false;
  if (args.peek() == "hex") {
    hex = true;
    args.next();
  }
  std::vector<std::uint8_t> out;
  while (!args.empty() && out.size() < want) {
    const std::string tok(args.peek());
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(tok.c_str(), &end, hex ? 16 : 0);
    if (tok.empty() || *end || errno || v > 255) break;
    args.next();
    out.push_back(static_cast<std::uint8_t>(v));
  }
  if (out.size() != want) {
    throw UsageError{fmt::format("{} expected {} bytes got {}", what, want, out.size())};
  }
  return out;
}

struct Opened {
  runtime::Runtime rt;
  std::shared_ptr<runtime::Map> map;
};

const obj::Btf* btf_of(const runtime::Map& m) { return m.btf() ? &m.btf()->btf() : nullptr; }

// One element as bpftool's BTF dumper prints it: {"key": .., "value": ..} ("values" per CPU).
ojson formatted(const runtime::Map& m, std::span<const std::uint8_t> key, std::span<const std::uint8_t> value) {
  const obj::Btf& btf = *btf_of(m);
  ojson j = ojson::object();
  if (m.btf_key_type_id() && !key.empty()) j["key"] = obj::btf_value(btf, m.btf_key_type_id(), key);
  const std::uint32_t vs = m.def().value_size;
  if (is_percpu(m.def().type)) {
    ojson values = ojson::array();
    const std::size_t stride = (vs + 7) / 8 * 8;
    for (std::size_t cpu = 0; (cpu + 1) * stride <= value.size(); ++cpu) {
      values.push_back({{"cpu", cpu}, {"value", obj::btf_value(btf, m.btf_value_type_id(), value.subspan(cpu * stride, vs))}});
    }
    j["values"] = values;
  } else {
    j["value"] = obj::btf_value(btf, m.btf_value_type_id(), value.first(std::min<std::size_t>(vs, value.size())));
  }
  return j;
}

ojson element_json(const runtime::Map& m, std::span<const std::uint8_t> key, std::span<const std::uint8_t> value) {
  ojson j = ojson::object();
  j["key"] = hex_array(key);  // [] for a queue's or stack's element, as bpftool's print_entry_json
  const std::uint32_t vs = m.def().value_size;
  if (is_percpu(m.def().type)) {
    ojson values = ojson::array();
    const std::size_t stride = (vs + 7) / 8 * 8;
    for (std::size_t cpu = 0; (cpu + 1) * stride <= value.size(); ++cpu) {
      values.push_back({{"cpu", cpu}, {"value", hex_array(value.subspan(cpu * stride, vs))}});
    }
    j["values"] = values;
  } else {
    j["value"] = hex_array(value.first(std::min<std::size_t>(vs, value.size())));
  }
  if (btf_of(m) && m.btf_value_type_id()) j["formatted"] = formatted(m, key, value);
  return j;
}

// bpftool's print_entry_plain.
void print_plain(const runtime::Map& m, std::span<const std::uint8_t> key, std::span<const std::uint8_t> value) {
  const std::uint32_t vs = m.def().value_size;
  if (is_percpu(m.def().type)) {
    fmt::print("key:\n{}\n", hex_line(key));
    const std::size_t stride = (vs + 7) / 8 * 8;
    for (std::size_t cpu = 0; (cpu + 1) * stride <= value.size(); ++cpu) {
      fmt::print("value (CPU {:02}): {}\n", cpu, hex_line(value.subspan(cpu * stride, vs)));
    }
    return;
  }
  const bool break_names = key.size() > 16 || vs > 16;
  const bool single_line = key.size() + vs <= 24 && !break_names;
  if (!key.empty()) fmt::print("key:{}{}{}", break_names ? '\n' : ' ', hex_line(key), single_line ? "  " : "\n");
  fmt::print("value:{}{}\n", break_names ? '\n' : ' ', hex_line(value.first(vs)));
}

void print_element(const runtime::Map& m, std::span<const std::uint8_t> key, std::span<const std::uint8_t> value) {
  if (output_format().json) {
    print_json(element_json(m, key, value));
  } else if (btf_of(m) && m.btf_value_type_id()) {
    fmt::print("{}\n", bpftool_json(formatted(m, key, value), true));
  } else {
    print_plain(m, key, value);
  }
}

std::uint64_t memlock(const runtime::Map& m) {
  // What the map's shared memory takes (bpfvm's own count; the kernel's differs per type).
  std::error_code ec;
  const std::string& path = m.impl().storage_path();
  const auto size = path.empty() ? 0 : std::filesystem::file_size(path, ec);
  return ec ? 0 : (size + 4095) / 4096 * 4096;
}

ojson map_json(const runtime::Map& m, const std::optional<nlohmann::json>& record) {
  ojson j;
  j["id"] = m.id();
  j["type"] = std::string(maps::map_type_name(m.def().type));
  j["name"] = m.name();
  j["flags"] = m.def().map_flags;
  j["bytes_key"] = m.def().key_size;
  j["bytes_value"] = m.def().value_size;
  j["max_entries"] = m.def().max_entries;
  j["bytes_memlock"] = memlock(m);
  j["frozen"] = m.impl().frozen() ? 1 : 0;
  if (m.btf()) j["btf_id"] = m.btf()->id();
  if (record && record->contains("pins")) j["pinned"] = record->at("pins");
  j["pids"] = record ? owner_json(*record) : ojson::array();
  return j;
}

void print_map_text(const runtime::Map& m, const std::optional<nlohmann::json>& record) {
  fmt::print("{}: {}  name {}  flags {:#x}\n", m.id(), maps::map_type_name(m.def().type), m.name(), m.def().map_flags);
  fmt::print("\tkey {}B  value {}B  max_entries {}  memlock {}B\n", m.def().key_size, m.def().value_size,
             m.def().max_entries, memlock(m));
  const bool frozen = m.impl().frozen();
  if (m.btf() || frozen) {
    fmt::print("\t{}{}{}\n", m.btf() ? fmt::format("btf_id {}", m.btf()->id()) : "", m.btf() && frozen ? "  " : "",
               frozen ? "frozen" : "");
  }
  if (record) print_pins_and_owner(*record);
}

int show(Args& args) {
  runtime::Runtime rt;
  std::vector<std::uint32_t> ids;
  const bool named = !args.empty();
  if (named) {
    const ObjectRef ref = parse_map_ref(args);
    if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after MAP", args.peek())};
    auto found = resolve_maps(rt, ref);
    if (!found) return fail(found.error());
    ids = *found;
  } else {
    auto registry = open_registry(rt);
    if (!registry) return fail(registry.error());
    for (const auto& r : (*registry)->list(runtime::ObjectKind::kMap)) ids.push_back(r.value("id", 0u));
  }
  ojson all = ojson::array();
  for (std::uint32_t id : ids) {
    auto m = rt.open_map_by_id(id);
    if (!m) {
      if (named) return fail(m.error());
      continue;  // a map of a process that just ended
    }
    const auto record = map_record_of(rt, id);
    if (output_format().json) all.push_back(map_json(**m, record));
    else print_map_text(**m, record);
  }
  if (output_format().json) print_json(named && all.size() == 1 ? all[0] : all);
  if (ids.empty() && !named) note_empty_listing(rt, "maps");
  return kExitOk;
}

int dump(runtime::Map& m) {
  const std::uint32_t ks = m.def().key_size;
  std::vector<std::uint8_t> key(ks), next(ks), value(m.impl().user_value_size());
  ojson all = ojson::array();
  const bool btf = btf_of(m) && m.btf_value_type_id();
  std::size_t n = 0;
  if (m.impl().is_keyless()) return fail(make_error(Errc::kNotSupported, "can't dump a {} map: use peek or pop",
                                                    maps::map_type_name(m.def().type)));
  if (m.def().type == BPF_MAP_TYPE_RINGBUF || m.def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
    return fail(make_error(Errc::kNotSupported, "can't dump a {} map: its records are read as a stream",
                           maps::map_type_name(m.def().type)));
  }
  bool first = true;
  while (m.impl().next_key(first ? nullptr : key.data(), next.data())) {
    first = false;
    key = next;
    if (!m.impl().lookup(key.data(), value.data())) continue;  // deleted meanwhile
    ++n;
    if (output_format().json) all.push_back(element_json(m, key, value));
    else if (btf) all.push_back(formatted(m, key, value));
    else print_plain(m, key, value);
  }
  if (output_format().json) print_json(all);
  else if (btf) fmt::print("{}\n", bpftool_json(all, true));
  else fmt::print("Found {} element{}\n", n, n == 1 ? "" : "s");
  return kExitOk;
}

std::uint64_t update_flags(Args& args) {
  std::uint64_t flags = BPF_ANY;
  while (!args.empty()) {
    const std::string_view w = args.next();
    if (w == "any") flags = BPF_ANY;
    else if (w == "exist") flags = BPF_EXIST;
    else if (w == "noexist") flags = BPF_NOEXIST;
    else throw UsageError{fmt::format("unexpected '{}': UPDATE_FLAGS := {{ any | exist | noexist }}", w)};
  }
  return flags;
}

int create(Args& args) {
  const std::string file(args.next());
  if (file.empty()) throw UsageError{"map create needs a FILE"};
  runtime::MapCreateRequest req;
  bool have_type = false, have_key = false, have_value = false, have_entries = false, have_name = false;
  std::optional<ObjectRef> inner;
  const auto number = [&](std::string_view what) {
    const std::string v(args.next());
    char* end = nullptr;
    const unsigned long n = std::strtoul(v.c_str(), &end, 0);
    if (v.empty() || *end || n > UINT32_MAX) throw UsageError{fmt::format("can't parse {} '{}'", what, v)};
    return static_cast<std::uint32_t>(n);
  };
  while (!args.empty()) {
    const std::string_view w = args.next();
    if (w == "type") {
      const std::string_view t = args.next();
      bool found = false;
      for (std::uint32_t i = 1; i < 64; ++i) {
        if (!maps::map_type_name(i).empty() && maps::map_type_name(i) == t) {
          req.def.type = i;
          found = true;
        }
      }
      if (!found) throw UsageError{fmt::format("unrecognized map type: {}", t)};
      have_type = true;
    } else if (w == "key") {
      req.def.key_size = number("key size");
      have_key = true;
    } else if (w == "value") {
      req.def.value_size = number("value size");
      have_value = true;
    } else if (w == "entries") {
      req.def.max_entries = number("max entries");
      have_entries = true;
    } else if (w == "name") {
      req.def.name = std::string(args.next());
      have_name = true;
    } else if (w == "flags") {
      req.def.map_flags = number("flags");
    } else if (w == "inner_map") {
      inner = parse_map_ref(args);
    } else {
      throw UsageError{fmt::format("unknown arg '{}'", w)};
    }
  }
  if (!have_type || !have_key || !have_value || !have_entries || !have_name) {
    throw UsageError{"map create needs type, key, value, entries and name"};
  }
  runtime::Runtime rt;
  if (inner) {
    auto m = open_map(rt, *inner);
    if (!m) return fail(m.error());
    req.inner = (*m)->def();
  }
  auto map = rt.create_map(req);
  if (!map) {  // bpftool returns -1 here, not the errno
    fail_errno("map create failed", map.error());
    return kExitError;
  }
  if (auto r = rt.pin(file, *map); !r) return fail_pin(file, r.error());
  return done();
}

}  // namespace

int cmd_map(Args& args) {
  const std::string_view sub = args.next();
  if (sub.empty() || sub == "show" || sub == "list") return show(args);  // bare `map` is `map show`
  if (sub == "create") return create(args);
  if (sub != "dump" && sub != "lookup" && sub != "getnext" && sub != "delete" && sub != "update" && sub != "pin" &&
      sub != "freeze" && sub != "peek" && sub != "push" && sub != "pop" && sub != "enqueue" && sub != "dequeue") {
    throw UsageError{fmt::format("unknown map command '{}'", sub), true};
  }
  if (args.empty()) throw UsageError{fmt::format("map {} needs a MAP", sub)};
  const ObjectRef ref = parse_map_ref(args);
  runtime::Runtime rt;
  auto opened = open_map(rt, ref);
  if (!opened) return fail(opened.error());
  runtime::Map& m = **opened;
  maps::Map& impl = m.impl();
  const std::uint32_t ks = m.def().key_size;
  std::vector<std::uint8_t> value(impl.user_value_size());

  if (sub == "dump") {
    if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after map dump MAP", args.peek())};
    return dump(m);
  }
  if (sub == "pin") {
    const std::string file(args.next());
    if (file.empty()) throw UsageError{"map pin needs a FILE"};
    if (auto r = rt.pin(file, *opened); !r) return fail_pin(file, r.error());
    return done();
  }
  if (sub == "freeze") {
    if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
    if (impl.frozen()) return fail_errno("failed to freeze map", make_error(Errc::kPermission, "already frozen"));
    impl.freeze();
    return done();
  }
  if (sub == "peek" || sub == "pop" || sub == "dequeue") {
    auto r = sub == "peek" ? impl.peek(value.data()) : impl.pop(value.data());
    if (!r && r.error().code() == Errc::kNotFound) return not_found(sub == "peek", {});
    if (!r) return fail_errno(fmt::format("{} failed", sub == "peek" ? "lookup" : "pop"), r.error());
    print_element(m, {}, value);
    return kExitOk;
  }
  if (sub == "push" || sub == "enqueue") {
    if (args.next() != "value") throw UsageError{fmt::format("map {} MAP value VALUE", sub)};
    const auto v = parse_data(args, m.def().value_size, "value");
    if (auto r = impl.push(v.data(), BPF_ANY); !r) return fail_errno("update failed", r.error());
    return done();
  }
  std::optional<std::vector<std::uint8_t>> key;
  if (args.peek() == "key") {
    args.next();
    key = parse_data(args, ks, "key");
  }
  if (sub == "lookup") {
    if (!key && ks) throw UsageError{"map lookup needs a key"};
    if (impl.is_keyless()) {
      auto r = impl.peek(value.data());
      if (!r && r.error().code() == Errc::kNotFound) return not_found(true, {});
      if (!r) return fail_errno("lookup failed", r.error());
      print_element(m, {}, value);
      return kExitOk;
    }
    if (auto r = impl.lookup(key->data(), value.data()); !r) {
      if (r.error().code() == Errc::kNotFound) return not_found(true, *key);
      return fail_errno("lookup failed", r.error());
    }
    print_element(m, *key, value);
    return kExitOk;
  }
  if (sub == "getnext") {
    std::vector<std::uint8_t> next(ks);
    if (auto r = impl.next_key(key ? key->data() : nullptr, next.data()); !r) {
      return fail_errno("can't get next key", r.error());
    }
    if (output_format().json) {
      ojson j;
      j["key"] = key ? hex_array(*key) : ojson(nullptr);
      j["next_key"] = hex_array(next);
      print_json(j);
    } else {
      fmt::print("key:{}\nnext key:\n{}\n", key ? "\n" + hex_line(*key) : std::string(" None"), hex_line(next));
    }
    return kExitOk;
  }
  if (sub == "delete") {
    if (!key) throw UsageError{"map delete needs a key"};
    if (auto r = impl.erase(key->data()); !r) return fail_errno("delete failed", r.error());
    return done();
  }
  // update
  if (!key && ks) throw UsageError{"map update needs a key"};
  if (args.next() != "value") throw UsageError{"map update needs a value"};
  if (impl.inner_def()) {
    const ObjectRef inner_ref = parse_map_ref(args);
    auto inner = open_map(rt, inner_ref);
    if (!inner) return fail(inner.error());
    const std::uint64_t flags = update_flags(args);
    if (auto r = impl.update_inner(key->data(), (*inner)->shared_impl(), flags); !r) return fail_errno("update failed", r.error());
    return done();
  }
  if (m.def().type == BPF_MAP_TYPE_PROG_ARRAY) {
    return fail(make_error(Errc::kNotSupported, "a program array belongs to the process that made it"));
  }
  std::vector<std::uint8_t> v;
  if (is_percpu(m.def().type)) {
    // bpftool takes one value and writes it to every CPU.
    const auto one = parse_data(args, m.def().value_size, "value");
    const std::size_t stride = (m.def().value_size + 7) / 8 * 8;
    v.assign(value.size(), 0);
    for (std::size_t off = 0; off + stride <= v.size(); off += stride) std::copy(one.begin(), one.end(), v.begin() + off);
  } else {
    v = parse_data(args, m.def().value_size, "value");
  }
  const std::uint64_t flags = update_flags(args);
  if (impl.is_keyless()) {
    if (auto r = impl.push(v.data(), flags); !r) return fail_errno("update failed", r.error());
    return done();
  }
  if (auto r = impl.update(key->data(), v.data(), flags); !r) return fail_errno("update failed", r.error());
  return done();
}

}  // namespace bpfvm::cli
