#include "bpfvm/runtime/object.hpp"

#include <bpf/btf.h>

#include <cstring>
#include <map>
#include <mutex>

#include "bpfvm/base/file.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/prog_array.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/program_verifier.hpp"

namespace bpfvm::runtime {

maps::MapDef map_def(const obj::MapSpec& m) {
  maps::MapDef def{m.type, m.key_size, m.value_size, m.max_entries, m.map_flags, m.name, m.map_extra};
  // libbpf sizes a perf_event_array without max_entries to the number of possible CPUs.
  if (def.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && def.max_entries == 0) def.max_entries = maps::possible_cpus();
  return def;
}

namespace {

Result<std::shared_ptr<Map>> create_one(Runtime& rt, const obj::MapSpec& m, const std::shared_ptr<BtfObject>& btf) {
  MapCreateRequest req;
  req.def = map_def(m);
  if (m.inner) req.inner = map_def(*m.inner);
  if (btf && (m.btf_key_type_id || m.btf_value_type_id)) {
    req.btf = btf;
    req.btf_key_type_id = m.btf_key_type_id;
    req.btf_value_type_id = m.btf_value_type_id;
  }
  auto map = BPFVM_TRY(rt.create_map(req));
  if (!m.initial_value.empty()) {
    const std::uint32_t zero = 0;
    BPFVM_TRY(map->impl().update(&zero, m.initial_value.data(), BPF_ANY));
  }
  if (m.origin == obj::MapOrigin::kRodata) map->impl().freeze();
  return map;
}

}  // namespace

Result<std::vector<obj::CoreOutcome>> apply_core(obj::ObjectSpec& spec, const std::optional<std::string>& btf_path) {
  if (!spec.kconfig.empty() && !spec.kconfig_filled) {
    static const std::map<std::string, std::string>& config = *new std::map<std::string, std::string>(obj::read_kernel_config());  // (never destroyed: see verifier_platform.cpp)
    BPFVM_TRY(obj::fill_kconfig(spec, config));
  }
  if (!spec.has_core_relocations) return std::vector<obj::CoreOutcome>{};
  static std::mutex lock;
  static std::map<std::string, obj::Btf> targets;
  const obj::Btf* target = nullptr;
  {
    std::lock_guard guard(lock);
    auto it = targets.find(btf_path.value_or(""));
    if (it == targets.end()) {
      auto btf = obj::load_target_btf(btf_path);
      if (!btf) {
        return std::move(btf).error().with_context(
            fmt::format("{}: its CO-RE relocations need the types of a target kernel", spec.name));
      }
      it = targets.emplace(btf_path.value_or(""), std::move(*btf)).first;
    }
    target = &it->second;
  }
  auto out = obj::apply_core_relocations(spec, *target);
  if (!out) return std::move(out).error().with_context(spec.name);
  return out;
}

Result<Object> Object::load(Runtime& rt, const obj::ObjectSpec& original, const ObjectOptions& options) {
  // Prepared for the target (CO-RE, kconfig externs) on a copy; the caller's spec stays as read.
  const bool prepare = original.has_core_relocations || (!original.kconfig.empty() && !original.kconfig_filled);
  obj::ObjectSpec relocated;
  if (prepare) {
    relocated = original;
    BPFVM_TRY(apply_core(relocated, options.core_btf));
  }
  const obj::ObjectSpec& spec = prepare ? relocated : original;
  Object out;
  if (spec.btf) out.btf_ = BPFVM_TRY_CTX(rt.load_btf(spec.btf->bytes()), "{}: BTF", spec.name);
  for (const obj::MapSpec& m : spec.maps) {
    std::shared_ptr<Map> map;
    const std::string pin_path = options.pin_maps_dir + "/" + m.name;
    if (m.pinning && !m.pin_by_name) {
      return make_error(Errc::kNotSupported, "{}: map '{}': pinning {} is not one bpfvm knows (libbpf's 1, by name; "
                        "iproute2's 1 and 2 in a legacy definition)", spec.name, m.name, m.pinning);
    }
    if (m.pin_by_name) {
      // libbpf reuses a map already pinned under its name when its definition matches.
      auto file = rt.pin_file_for(pin_path);
      if (file && os::exists(*file)) {
        auto opened = BPFVM_TRY_CTX(rt.open_pinned(pin_path), "{}: map '{}'", spec.name, m.name);
        auto* existing = std::get_if<std::shared_ptr<Map>>(&opened);
        if (!existing || (*existing)->def().type != m.type || (*existing)->def().key_size != m.key_size ||
            (*existing)->def().value_size != m.value_size || (*existing)->def().max_entries != map_def(m).max_entries) {
          return make_error(Errc::kInvalid, "{}: map '{}': the map pinned at {} does not match its definition", spec.name,
                            m.name, pin_path);
        }
        map = *existing;
      }
    }
    if (!map) {
      map = BPFVM_TRY_CTX(create_one(rt, m, out.btf_), "{}: map '{}'", spec.name, m.name);
      if (m.pin_by_name) BPFVM_TRY_CTX(rt.pin(pin_path, map), "{}: map '{}': pin", spec.name, m.name);
    }
    out.maps_.push_back(std::move(map));
    out.map_symbols_.push_back(m.symbol);
  }
  for (std::size_t i = 0; i < spec.maps.size(); ++i) {
    for (const auto& [slot, target] : spec.maps[i].initial_slots) {
      BPFVM_TRY_CTX(out.maps_[i]->impl().update_inner(&slot, out.maps_[target]->shared_impl(), BPF_ANY),
                    "{}: map '{}': slot {}", spec.name, spec.maps[i].name, slot);
    }
  }
  for (const obj::ProgramSpec& p : spec.programs) {
    if (options.skip_unsupported && !p.kind.supported) continue;
    if (p.link_error) return Error(*p.link_error).with_context(spec.name);
    if (p.kind.prog_type == 0) {
      return make_error(Errc::kInvalid, "{}: program '{}': section '{}' does not say which program type it is",
                        spec.name, p.name, p.section);
    }
    if (!p.kind.supported && !verified_only_type(p.kind.prog_type) && p.kind.prog_type != BPF_PROG_TYPE_STRUCT_OPS &&
        p.kind.prog_type != BPF_PROG_TYPE_EXT) {
      return make_error(Errc::kNotSupported, "{}: program '{}': section '{}' programs are not supported by bpfvm",
                        spec.name, p.name, p.section);
    }
    ProgramLoadRequest req;
    req.prog_type = p.kind.prog_type;
    req.expected_attach_type = p.kind.expected_attach_type;
    req.sleepable = p.kind.sleepable;
    req.attach_target = p.kind.attach_target;
    if (p.kind.prog_type == BPF_PROG_TYPE_EXT && options.extension_target) {
      // (the function by name, as libbpf finds it: a FUNC of the target program's BTF)
      const BtfObject* tb = options.extension_target->btf();
      const int id = tb ? btf__find_by_name_kind(tb->btf().get(), p.kind.attach_target.c_str(), BTF_KIND_FUNC) : -1;
      if (id <= 0) {
        return make_error(Errc::kNotFound, "{}: program '{}': the program it extends, '{}', has no function '{}'{}",
                          spec.name, p.name, options.extension_target->name(), p.kind.attach_target,
                          tb ? "" : " (it has no BTF)");
      }
      req.attach_program = options.extension_target;
      req.attach_btf_id = static_cast<std::uint32_t>(id);
    }
    req.name = p.name;
    req.license = spec.license;
    req.insns = map_references_by_index(p.insns);
    req.maps = out.maps_;
    if (out.btf_ && !p.func_info.empty()) {
      req.btf = out.btf_;
      req.func_info = p.func_info;
      req.line_info = p.line_info;
    }
    req.mode = options.mode;
    std::string log;
    auto prog = rt.load_program(std::move(req), &log);
    if (!prog) {
      Error e = std::move(prog).error();
      // A verifier rejection carries its explanation (source line, path, hint) in the log.
      if (e.code() == Errc::kAccess && log.starts_with("error at insn")) e = Error(e.code(), "refused by the verifier:\n" + log);
      return std::move(e).with_context(fmt::format("{}: program '{}'", spec.name, p.name));
    }
    out.programs_.push_back({p.name, p.section, std::move(*prog)});
  }
  std::vector<std::weak_ptr<maps::Map>> prog_arrays;
  for (const auto& m : out.maps_) {
    if (m->def().type == BPF_MAP_TYPE_PROG_ARRAY) prog_arrays.push_back(m->shared_impl());
  }
  out.release_ = std::shared_ptr<void>(nullptr, [prog_arrays](void*) {
    for (const auto& weak : prog_arrays) {
      if (auto m = weak.lock(); m && !m->pinned()) static_cast<maps::ProgArray&>(*m).clear();
    }
  });
  // Program arrays with initial slots, filled once their programs are loaded (as libbpf does).
  for (std::size_t i = 0; i < spec.maps.size(); ++i) {
    for (const auto& [slot, name] : spec.maps[i].initial_programs) {
      std::shared_ptr<Program> target = out.find_program(name);
      if (!target) {
        return make_error(Errc::kInvalid, "{}: map '{}': slot {} names program '{}', which was not loaded", spec.name,
                          spec.maps[i].name, slot, name);
      }
      auto& array = static_cast<maps::ProgArray&>(out.maps_[i]->impl());
      BPFVM_TRY_CTX(array.set_program(&slot, target, target->id(), target->type(), BPF_ANY), "{}: map '{}': slot {}",
                    spec.name, spec.maps[i].name, slot);
    }
  }
  return out;
}

Result<Object> Object::open_file(Runtime& rt, const std::string& path, const ObjectOptions& options) {
  const auto spec = BPFVM_TRY(obj::open_object(path));
  return load(rt, spec, options);
}

std::shared_ptr<Program> Object::find_program(std::string_view name) const {
  for (const auto& p : programs_) {
    if (p.name == name) return p.program;
  }
  return nullptr;
}

std::shared_ptr<Map> Object::find_map(std::string_view name) const {
  for (std::size_t i = 0; i < maps_.size(); ++i) {
    if (maps_[i]->name() == name || map_symbols_[i] == name) return maps_[i];
  }
  return nullptr;
}

}  // namespace bpfvm::runtime
