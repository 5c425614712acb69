// Pinning: objects as files under the pin root. A pin file is JSON holding everything another process
// needs to open the object again: a map's definition, BTF and contents; a program's code (as loaded,
// with map references by index), its maps, BTF, func_info and line_info.
#include <nlohmann/json.hpp>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "records.hpp"

namespace bpfvm::runtime {

using nlohmann::json;

namespace {

constexpr int kPinFormat = 1;
constexpr std::string_view kBpffs = "/sys/fs/bpf";

std::string hex(std::span<const std::uint8_t> bytes) { return format_hex_bytes(bytes); }

Result<std::vector<std::uint8_t>> unhex(const json& j, std::string_view what) {
  if (!j.is_string()) return make_error(Errc::kInvalid, "pin file: '{}' is not a hex string", what);
  return parse_hex_bytes(j.get<std::string>());
}


Result<maps::MapDef> decode_def(const json& j) {
  try {
    maps::MapDef d;
    d.name = j.at("name").get<std::string>();
    d.type = j.at("type").get<std::uint32_t>();
    d.key_size = j.at("key_size").get<std::uint32_t>();
    d.value_size = j.at("value_size").get<std::uint32_t>();
    d.max_entries = j.at("max_entries").get<std::uint32_t>();
    d.map_flags = j.at("map_flags").get<std::uint32_t>();
    d.map_extra = j.value("map_extra", std::uint64_t{0});
    return d;
  } catch (const json::exception& e) {
    return make_error(Errc::kInvalid, "pin file: bad map definition: {}", e.what());
  }
}

json encode_map_contents(maps::Map& m) {
  json entries = json::array();
  std::vector<std::uint8_t> key(m.def().key_size), next(m.def().key_size), value(m.user_value_size());
  bool first = true;
  while (m.next_key(first ? nullptr : key.data(), next.data())) {
    first = false;
    key = next;
    if (m.inner_def()) {
      auto* inner = static_cast<maps::Map*>(m.lookup_in_place(key.data()));
      if (!inner) continue;
      json rec = map_def_json(inner->def());
      rec["entries"] = encode_map_contents(*inner);
      entries.push_back({hex(key), rec});
    } else if (m.lookup(key.data(), value.data())) {
      entries.push_back({hex(key), hex(value)});
    }
  }
  return entries;
}

json encode_map(const Map& m) {
  json j = map_def_json(m.def());
  if (!m.impl().storage_path().empty()) {
    j["storage"] = m.impl().storage_path();
    m.impl().mark_pinned();
  }
  j["frozen"] = m.impl().frozen();
  if (const maps::MapDef* inner = m.impl().inner_def()) j["inner"] = map_def_json(*inner);
  if (m.btf()) {
    j["btf"] = hex(m.btf()->btf().bytes());
    j["btf_key_type_id"] = m.btf_key_type_id();
    j["btf_value_type_id"] = m.btf_value_type_id();
  }
  j["entries"] = encode_map_contents(m.impl());
  return j;
}

json encode_program(const Program& p) {
  json j;
  put_program_load(j, p);
  j["jited"] = p.jited() != nullptr;  // opened again in the engine it was loaded with
  if (p.jited()) j["jit_harden"] = p.jited()->options().harden;
  j["maps"] = json::array();
  for (const auto& m : p.maps()) j["maps"].push_back(encode_map(*m));
  if (p.btf()) j["btf"] = hex(p.btf()->btf().bytes());
  return j;
}

}  // namespace

// Encoding and decoding with access to the Runtime's private helpers.
class PinCodec {
 public:
  static Result<void> fill_map(Runtime& rt, maps::Map& map, const json& entries) {
    for (const json& e : entries) {
      const auto key = BPFVM_TRY(unhex(e.at(0), "key"));
      if (key.size() != map.def().key_size) return make_error(Errc::kInvalid, "pin file: key of the wrong size");
      if (map.inner_def()) {
        const maps::MapDef def = BPFVM_TRY(decode_def(e.at(1)));
        auto inner = BPFVM_TRY(rt.create_map({def, std::nullopt, nullptr, 0, 0}));
        BPFVM_TRY(fill_map(rt, inner->impl(), e.at(1).at("entries")));
        BPFVM_TRY(map.update_inner(key.data(), inner->shared_impl(), BPF_ANY));
      } else {
        const auto value = BPFVM_TRY(unhex(e.at(1), "value"));
        if (value.size() != map.user_value_size()) return make_error(Errc::kInvalid, "pin file: value of the wrong size");
        BPFVM_TRY(map.update(key.data(), value.data(), BPF_ANY));
      }
    }
    return {};
  }

  static Result<std::shared_ptr<Map>> decode_map(Runtime& rt, const json& j) {
    MapCreateRequest req;
    req.def = BPFVM_TRY(decode_def(j));
    if (j.contains("inner")) req.inner = BPFVM_TRY(decode_def(j.at("inner")));
    if (j.contains("btf")) {
      req.btf = BPFVM_TRY(rt.load_btf(BPFVM_TRY(unhex(j.at("btf"), "btf"))));
      req.btf_key_type_id = j.value("btf_key_type_id", 0u);
      req.btf_value_type_id = j.value("btf_value_type_id", 0u);
    }
    // A map in shared memory is opened where it is: the same map, live. The snapshot is the fallback
    // for map types that are not shared and for storage that is gone.
    if (j.contains("storage")) {
      const std::string storage = j.at("storage").get<std::string>();
      if (os::exists(storage)) {
        auto shared = BPFVM_TRY(maps::open_shared_map(storage));
        const maps::MapDef& d = shared->def();
        if (d.type != req.def.type || d.key_size != req.def.key_size || d.value_size != req.def.value_size ||
            d.max_entries != req.def.max_entries) {
          return make_error(Errc::kInvalid, "pin file: the map at '{}' does not match its definition", storage);
        }
        return rt.register_map(std::move(shared), req);
      }
    }
    auto map = BPFVM_TRY(rt.create_map(req));
    BPFVM_TRY(fill_map(rt, map->impl(), j.at("entries")));
    if (j.value("frozen", false)) map->impl().freeze();
    return map;
  }

  static Result<std::shared_ptr<Program>> decode_program(Runtime& rt, const json& j, std::uint32_t id = 0) {
    ProgramLoadRequest req = BPFVM_TRY(program_request(j));
    req.id = id;
    if (j.contains("jited")) {
      req.mode = j.at("jited").get<bool>() && vm::JitProgram::available() ? ExecMode::kJit : ExecMode::kInterpreter;
      req.jit_harden = j.value("jit_harden", false);
    }
    for (const json& m : j.at("maps")) req.maps.push_back(BPFVM_TRY(decode_map(rt, m)));
    if (j.contains("btf")) req.btf = BPFVM_TRY(rt.load_btf(BPFVM_TRY(unhex(j.at("btf"), "btf"))));
    return rt.load_program(std::move(req));
  }
};

Result<std::string> Runtime::pin_file_for(const std::string& path) const {
  if (path.empty()) return make_error(Errc::kInvalid, "empty pin path");
  std::string abs = path[0] == '/' ? path : os::current_directory() + "/" + path;
  if (abs.find("/../") != std::string::npos || abs.find("/./") != std::string::npos || abs.ends_with("/..") ||
      abs.ends_with("/.")) {
    return make_error(Errc::kInvalid, "pin path '{}' must not contain '.' or '..' components", path);
  }
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  if (abs.starts_with(std::string(kBpffs) + "/")) return pin_root_ + abs.substr(kBpffs.size());
  if (abs.starts_with(pin_root_ + "/")) return abs;
  return make_error(Errc::kPermission, "'{}' is not under the pin root {} (or /sys/fs/bpf)", path, pin_root_);
}

Result<void> Runtime::pin(const std::string& path, const AnyObject& object) {
  const std::string file = BPFVM_TRY(pin_file_for(path));
  BPFVM_TRY(prepare_pin_root());
  const std::string parent = file.substr(0, file.rfind('/'));
  if (!os::is_directory(parent)) return make_error(Errc::kNotFound, "directory '{}' does not exist", parent);
  json doc = {{"bpfvm_pin", kPinFormat}};
  // The id, so that whoever opens the pin calls the object by the same id (runtime/registry.hpp).
  ObjectKind kind = ObjectKind::kMap;
  std::uint32_t id = 0;
  if (auto* m = std::get_if<std::shared_ptr<Map>>(&object)) {
    doc["kind"] = "map";
    doc["object"] = encode_map(**m);
    id = (*m)->id();
  } else if (auto* p = std::get_if<std::shared_ptr<Program>>(&object)) {
    doc["kind"] = "prog";
    doc["object"] = encode_program(**p);
    kind = ObjectKind::kProg;
    id = (*p)->id();
  } else if (auto* l = std::get_if<std::shared_ptr<Link>>(&object)) {
    doc["kind"] = "link";
    kind = ObjectKind::kLink;
    id = (*l)->id();
    doc["object"] = {{"prog", encode_program(*(*l)->program())}, {"attach_type", (*l)->attach_type()},
                     {"target", (*l)->target()}};
  } else {
    return make_error(Errc::kInvalid, "only maps, programs and links can be pinned");
  }
  doc["id"] = id;
  const std::string text = doc.dump() + "\n";
  BPFVM_TRY(os::create_file(file, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}));
  if (const auto& r = registry()) {
    // A pin outlives its loader, and the BTF record goes with the loader: the object's record keeps a copy.
    const BtfObject* btf = nullptr;
    if (auto* m = std::get_if<std::shared_ptr<Map>>(&object)) btf = (*m)->btf();
    if (auto* p = std::get_if<std::shared_ptr<Program>>(&object)) btf = (*p)->btf();
    r->add_pin(kind, id, file, btf ? json{{"btf", hex(btf->btf().bytes())}} : json::object());
  }
  std::lock_guard lock(mutex_);
  pinned_[file] = object;
  return {};
}

Result<AnyObject> Runtime::open_pinned(const std::string& path) {
  const std::string file = BPFVM_TRY(pin_file_for(path));
  {
    std::lock_guard lock(mutex_);
    if (auto it = pinned_.find(file); it != pinned_.end() && os::exists(file)) return it->second;
  }
  const std::string text = BPFVM_TRY(os::read_text_file(file));
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("bpfvm_pin", 0) != kPinFormat) {
    return make_error(Errc::kInvalid, "'{}' is not a bpfvm pin", path);
  }
  try {
    const std::string kind = doc.at("kind").get<std::string>();
    const json& o = doc.at("object");
    AnyObject out;
    if (kind == "map") {
      out = BPFVM_TRY(PinCodec::decode_map(*this, o));
    } else if (kind == "prog") {
      out = BPFVM_TRY(PinCodec::decode_program(*this, o, doc.value("id", 0u)));
    } else if (kind == "link") {
      auto prog = BPFVM_TRY(PinCodec::decode_program(*this, o.at("prog")));
      out = BPFVM_TRY(create_link(prog, o.at("attach_type").get<std::uint32_t>(), o.at("target").get<std::uint32_t>()));
    } else {
      return make_error(Errc::kInvalid, "'{}': unknown pinned object kind '{}'", path, kind);
    }
    std::lock_guard lock(mutex_);
    pinned_[file] = out;
    return out;
  } catch (const json::exception& e) {
    return make_error(Errc::kInvalid, "'{}' is not a valid bpfvm pin: {}", path, e.what());
  }
}

}  // namespace bpfvm::runtime
