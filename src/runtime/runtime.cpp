#include "bpfvm/runtime/runtime.hpp"

#include "bpfvm/helpers/timers.hpp"

#include "bpfvm/maps/object_map.hpp"
#include "bpfvm/obj/btf_value.hpp"
#include "bpfvm/runtime/kernel_tasks.hpp"
#include "bpfvm/isa/helper_names.hpp"

#include <bpf/btf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <set>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/sha256.hpp"
#include "bpfvm/base/wakeup.hpp"
#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/verifier/ctx_access.hpp"
#include "bpfvm/runtime/program_verifier.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"
#include "bpfvm/base/hex.hpp"
#include "records.hpp"

namespace bpfvm::runtime {

namespace {

constexpr int kProg = 0, kMap = 1, kBtf = 2, kLink = 3;
constexpr std::size_t kMaxInsns = 1'000'000;  // BPF_COMPLEXITY_LIMIT_INSNS

// Never destroyed (as helpers::implementations): an agent's watcher thread may load a program, and read
// this table, while the process's exit() runs the static destructors (ASan saw it free the table under
// a watcher in the libbpf-tools sweep).
const vm::HelperTable& helper_table() {
  static const vm::HelperTable& table = *[] {
    auto* t = new vm::HelperTable;
    for (const helpers::Implementation& h : helpers::implementations()) t->set(h.id, h.fn);
    return t;
  }();
  return table;
}

// bpf_prog_calc_tag: the digest (SHA-256 since Linux 6.18) of the instructions as loaded, with map
// references' immediates zeroed.
std::array<std::uint8_t, 8> program_tag(std::span<const isa::RawInsn> insns) {
  std::vector<isa::RawInsn> copy(insns.begin(), insns.end());
  for (std::size_t i = 0; i + 1 < copy.size(); ++i) {
    isa::RawInsn& in = copy[i];
    if (!in.is_lddw()) continue;
    if (in.src == BPF_PSEUDO_MAP_IDX) in.src = BPF_PSEUDO_MAP_FD;
    if (in.src == BPF_PSEUDO_MAP_IDX_VALUE) in.src = BPF_PSEUDO_MAP_VALUE;
    if (in.src == BPF_PSEUDO_MAP_FD || in.src == BPF_PSEUDO_MAP_VALUE) {
      in.imm = 0;
      copy[i + 1].imm = 0;
    }
    ++i;
  }
  const auto wire = isa::to_wire(copy);
  const auto digest = sha256(wire);
  std::array<std::uint8_t, 8> tag{};
  std::memcpy(tag.data(), digest.data(), tag.size());
  return tag;
}

Result<void> check_btf_info(const ProgramLoadRequest& r, std::size_t len) {
  if ((!r.func_info.empty() || !r.line_info.empty()) && !r.btf) {
    return make_error(Errc::kInvalid, "func_info and line_info need prog_btf");
  }
  for (std::size_t i = 0; i < r.func_info.size(); ++i) {
    const auto& f = r.func_info[i];
    if ((i == 0 && f.insn != 0) || (i > 0 && f.insn <= r.func_info[i - 1].insn) || f.insn >= len) {
      return make_error(Errc::kInvalid, "func_info[{}] names instruction {}, out of order or range", i, f.insn);
    }
    if (f.type_id == 0 || f.type_id >= r.btf->btf().type_count()) {
      return make_error(Errc::kInvalid, "func_info[{}] names BTF type {}, which does not exist", i, f.type_id);
    }
  }
  for (std::size_t i = 0; i < r.line_info.size(); ++i) {
    const auto& l = r.line_info[i];
    if ((i > 0 && l.insn < r.line_info[i - 1].insn) || l.insn >= len) {
      return make_error(Errc::kInvalid, "line_info[{}] names instruction {}, out of order or range", i, l.insn);
    }
  }
  return {};
}

// An extension (freplace) and the function of a loaded program it replaces, as the kernel checks them
// before it verifies (bpf_check_attach_target, btf_check_type_match): the target is a function of the
// program's func_info, global, not of an extension or an fentry/fexit program, with the extension's own
// entry function's prototype: as many arguments, the same kinds and sizes, pointers to structs of the
// same names. Returns the function's name.
Result<std::string> check_extension_target(const ProgramLoadRequest& r) {
  const Program* target = r.attach_program.get();
  if (!target) {
    return make_error(Errc::kInvalid, "an extension program (freplace) replaces a function of a loaded program: "
                                      "attach_prog_fd names none (libbpf: bpf_program__set_attach_target)");
  }
  if (r.attach_btf_id == 0) return make_error(Errc::kInvalid, "Tracing programs must provide btf_id");
  if (!target->btf()) {
    return make_error(Errc::kInvalid, "FENTRY/FEXIT program can only be attached to another program annotated with BTF");
  }
  const struct btf* tb = target->btf()->btf().get();
  const btf_type* tf = btf__type_by_id(tb, r.attach_btf_id);
  if (!tf || r.attach_btf_id >= target->btf()->btf().type_count()) {
    return make_error(Errc::kInvalid, "attach_btf_id {} is invalid", r.attach_btf_id);
  }
  const std::string name(target->btf()->btf().type_name(r.attach_btf_id));
  if (name.empty()) return make_error(Errc::kInvalid, "attach_btf_id {} doesn't have a name", r.attach_btf_id);
  const auto infos = target->func_info();
  if (std::none_of(infos.begin(), infos.end(), [&](const obj::FuncInfo& f) { return f.type_id == r.attach_btf_id; })) {
    return make_error(Errc::kInvalid, "Subprog {} doesn't exist", name);
  }
  if (target->type() == BPF_PROG_TYPE_EXT) return make_error(Errc::kInvalid, "Cannot recursively attach");
  if (target->type() == BPF_PROG_TYPE_TRACING &&
      (target->expected_attach_type() == BPF_TRACE_FENTRY || target->expected_attach_type() == BPF_TRACE_FEXIT)) {
    return make_error(Errc::kInvalid, "Cannot extend fentry/fexit");
  }
  if (!r.btf || r.func_info.empty()) return make_error(Errc::kInvalid, "Program extension requires BTF");
  const struct btf* eb = r.btf->btf().get();
  const btf_type* ef = btf__type_by_id(eb, r.func_info[0].type_id);
  if (!ef || !btf_is_func(ef) || !btf_is_func(tf)) return make_error(Errc::kInvalid, "attach_btf_id {} is not a function", r.attach_btf_id);
  const std::string own(r.btf->btf().type_name(r.func_info[0].type_id));
  // (a FUNC's linkage is its vlen)
  if (btf_vlen(ef) != BTF_FUNC_GLOBAL) return make_error(Errc::kInvalid, "{}() is not a global function", own);
  if (btf_vlen(tf) != BTF_FUNC_GLOBAL) return make_error(Errc::kInvalid, "{}() is not a global function", name);
  const btf_type* ep = btf__type_by_id(eb, ef->type);
  const btf_type* tp = btf__type_by_id(tb, tf->type);
  if (!ep || !tp || !btf_is_func_proto(ep) || !btf_is_func_proto(tp)) return make_error(Errc::kInvalid, "a function without a prototype");
  if (btf_vlen(ep) != btf_vlen(tp)) {
    return make_error(Errc::kInvalid, "{}() has {} args while {}() has {} args", own, btf_vlen(ep), name, btf_vlen(tp));
  }
  // (types through typedefs and modifiers, as the kernel's btf_type_skip_modifiers; void is type 0)
  const obj::Btf& ebtf = r.btf->btf();
  const obj::Btf& tbtf = target->btf()->btf();
  const auto plain = [](const obj::Btf& btf, std::uint32_t id) { return obj::btf_skip_qualifiers(btf, id); };
  const std::uint32_t er = plain(ebtf, ep->type), tr = plain(tbtf, tp->type);
  if (btf__type_by_id(eb, er)->info != btf__type_by_id(tb, tr)->info) {
    return make_error(Errc::kInvalid, "Return type {} of {}() doesn't match type {} of {}()", ebtf.kind_name(er), own,
                      tbtf.kind_name(tr), name);
  }
  for (std::uint16_t i = 0; i < btf_vlen(ep); ++i) {
    const std::uint32_t ei = plain(ebtf, btf_params(ep)[i].type), ti = plain(tbtf, btf_params(tp)[i].type);
    const btf_type* e = btf__type_by_id(eb, ei);
    const btf_type* t = btf__type_by_id(tb, ti);
    if (!e || !t) return make_error(Errc::kInvalid, "arg{} in {}() has unrecognized type", i, own);
    if (e->info != t->info) {
      return make_error(Errc::kInvalid, "arg{} in {}() is {} while {}() has {}", i, own, ebtf.kind_name(ei), name,
                        tbtf.kind_name(ti));
    }
    const bool sized = btf_is_int(e) || btf_is_any_enum(e) || btf_is_composite(e) || btf_kind(e) == BTF_KIND_FLOAT;
    if (sized && e->size != t->size) {
      return make_error(Errc::kInvalid, "arg{} in {}() has size {} while {}() has {}", i, own, e->size, name, t->size);
    }
    if (btf_is_int(e) || btf_is_any_enum(e)) continue;
    if (!btf_is_ptr(e)) return make_error(Errc::kInvalid, "arg{} in {}() has unrecognized type", i, own);
    const btf_type* es = btf__type_by_id(eb, plain(ebtf, e->type));
    const btf_type* ts = btf__type_by_id(tb, plain(tbtf, t->type));
    if (!es || !btf_is_composite(es) || btf_is_union(es)) return make_error(Errc::kInvalid, "arg{} in {}() is not a pointer to context", i, own);
    if (!ts || !btf_is_composite(ts) || btf_is_union(ts)) return make_error(Errc::kInvalid, "arg{} in {}() is not a pointer to context", i, name);
    const std::string_view sn = btf__name_by_offset(eb, es->name_off), tn = btf__name_by_offset(tb, ts->name_off);
    if (sn != tn) return make_error(Errc::kInvalid, "arg{} {}(struct {} *) doesn't match {}(struct {} *)", i, own, sn, name, tn);
  }
  return name;
}

// Every helper call must name a helper bpfvm has, that this program type may call, and, for GPL-only
// helpers, come from a GPL-compatible program (the kernel's check_helper_call).
Result<void> check_helper_calls(const ProgramLoadRequest& r) {
  for (std::size_t i = 0; i < r.insns.size(); ++i) {
    const isa::RawInsn& in = r.insns[i];
    if (in.is_lddw()) {
      ++i;
      continue;
    }
    if (in.opcode != 0x85 || in.src != 0) continue;
    // libbpf's poisoned instructions: the verifier refuses them where a run reaches them; in dead code
    // (a branch a constant rules out) they are replaced after verification (see load).
    if (isa::poison_of_call(in.imm) != isa::Poison::kNone) continue;
    const helpers::Prototype* proto = helpers::find_prototype(in.imm);
    if (!proto) return make_error(Errc::kInvalid, "unknown func #{}: bpfvm has no such helper", in.imm).at_insn(i);
    // (a struct_ops program's helpers depend on its member: the verifier asks, VerifierPlatform)
    if (r.prog_type != BPF_PROG_TYPE_STRUCT_OPS && !helpers::allowed(r.prog_type, in.imm, r.expected_attach_type)) {
      return make_error(Errc::kInvalid, "unknown func bpf_{}#{}: {} programs may not call it", proto->name, in.imm,
                        obj::prog_type_name(r.prog_type)).at_insn(i);
    }
    if (proto->gpl_only && !gpl_compatible(r.license)) {
      return make_error(Errc::kInvalid, "cannot call GPL-restricted function bpf_{}#{} from a program with license '{}'",
                        proto->name, in.imm, r.license).at_insn(i);
    }
    // A program of a type bpfvm only verifies never runs: what its helpers would do does not matter.
    if (!helpers::implemented(in.imm) && runs_in_user_space(r.prog_type, r.expected_attach_type)) {
      return make_error(Errc::kNotSupported,
                        "bpf_{}#{} cannot run in bpfvm: its verifier judges calls to it (bpfvm veristat), but bpfvm has "
                        "no user-space implementation of it yet",
                        proto->name, in.imm).at_insn(i);
    }
    // Its kernel objects are laid out now, so that runs (in a signal handler too) allocate nothing. A
    // kernel without BTF leaves the program loadable: the helper then returns 0, as its reads fail.
    if (in.imm == BPF_FUNC_get_current_task || in.imm == BPF_FUNC_get_current_task_btf || in.imm == BPF_FUNC_find_vma) {
      (void)KernelTasks::instance().prepare();
    }
  }
  return {};
}

const char* pin_root_from_env() {
  const char* env = std::getenv("BPFVM_PIN_ROOT");
  return env && *env ? env : nullptr;
}

}  // namespace

std::string default_pin_root() {
  if (const char* env = pin_root_from_env()) return env;
  if (::geteuid() == 0) return std::string(kRootPinRoot);
  // The XDG base directory spec's place for a user's runtime files (made by logind, 0700, the user's).
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg == '/' && os::is_directory(xdg)) return std::string(xdg) + "/bpfvm";
  return fmt::format("/tmp/bpfvm-{}", ::geteuid());
}

Result<void> Runtime::prepare_pin_root() const {
  if (!default_root_) return os::make_directories(pin_root_);
  // Root's /run/bpfvm from before pin roots were private (0755) is tightened: only root can have made
  // it. A user's /tmp/bpfvm-<uid> that others may use is refused, as tmux refuses its socket directory.
  return os::make_private_directory(pin_root_, ::geteuid() == 0);
}

ExecMode default_exec_mode() {
  const char* env = std::getenv("BPFVM_JIT");
  if (env && std::string_view(env) == "0") return ExecMode::kInterpreter;
  return vm::JitProgram::available() ? ExecMode::kJit : ExecMode::kInterpreter;
}

bool default_jit_harden() {
  const char* env = std::getenv("BPFVM_JIT_HARDEN");
  return env && *env && std::string_view(env) != "0";
}

bool gpl_compatible(std::string_view license) {
  return license == "GPL" || license == "GPL v2" || license == "GPL and additional rights" ||
         license == "Dual BSD/GPL" || license == "Dual MIT/GPL" || license == "Dual MPL/GPL";
}

Map::Map(std::shared_ptr<maps::Map> impl, std::shared_ptr<const BtfObject> btf, std::uint32_t btf_key_type_id,
         std::uint32_t btf_value_type_id)
    : impl_(std::move(impl)), btf_(std::move(btf)), btf_key_type_id_(btf_key_type_id), btf_value_type_id_(btf_value_type_id) {}

std::uint8_t* Map::direct_value() const {
  if (def().type != BPF_MAP_TYPE_ARRAY) return nullptr;
  const std::uint32_t zero = 0;
  return static_cast<std::uint8_t*>(impl_->lookup_in_place(&zero));
}

Runtime::Runtime(RuntimeOptions options)
    : pin_root_(options.pin_root.empty() ? default_pin_root() : options.pin_root),
      real_fds_(options.real_fds),
      default_root_(options.pin_root.empty() && !pin_root_from_env()) {
  while (pin_root_.size() > 1 && pin_root_.back() == '/') pin_root_.pop_back();
}

Runtime::~Runtime() = default;

const std::shared_ptr<Registry>& Runtime::registry() {
  std::lock_guard lock(mutex_);
  if (!system_tried_) {
    system_tried_ = true;
    auto opened = prepare_pin_root();
    auto registry = opened ? Registry::open(pin_root_) : Result<std::shared_ptr<Registry>>(std::move(opened).error());
    if (registry) {
      system_ = std::move(*registry);
    } else {
      system_error_ = std::move(registry).error().with_context(fmt::format("use the registry under {}", pin_root_));
    }
  }
  return system_;
}

const std::optional<Error>& Runtime::registry_error() {
  registry();
  return system_error_;
}

std::uint32_t Runtime::new_id(int kind) {
  if (const auto& r = registry()) return r->allocate(static_cast<ObjectKind>(kind));
  std::lock_guard lock(mutex_);
  return next_ids_[kind]++;
}

std::shared_ptr<void> Runtime::publish(ObjectKind kind, std::uint32_t id, const nlohmann::json& record, bool fresh) {
  const auto& r = registry();
  if (!r) return nullptr;
  if (!fresh) {
    // Reopened (a pin, an id): a live record stays its loader's (or its pins'); one is written only
    // for an object that has none left.
    // (Another Runtime of this process counts as another loader: its record is its own.)
    if (r->find(kind, id)) return nullptr;
  }
  r->publish(kind, id, record);
  return std::make_shared<Registration>(r, kind, id);
}

Result<std::shared_ptr<BtfObject>> Runtime::open_btf_by_id(std::uint32_t id) {
  if (auto b = btf_by_id(id)) return b;
  const auto& r = registry();
  auto record = r ? r->find(ObjectKind::kBtf, id) : std::nullopt;
  if (!record) return make_error(Errc::kNotFound, "there is no BTF object with id {}", id);
  if (!record->contains("bytes") || !record->at("bytes").is_string()) {
    return make_error(Errc::kInvalid, "the registry record of BTF object {} is damaged", id);
  }
  const auto bytes = BPFVM_TRY(parse_hex_bytes(record->at("bytes").get<std::string>()));
  return load_btf_as(bytes, id);
}

Result<std::shared_ptr<BtfObject>> Runtime::open_btf_for(const nlohmann::json& record) {
  const auto id = record.at("btf_id").get<std::uint32_t>();
  if (auto b = open_btf_by_id(id)) return b;
  // The BTF object went with the process that loaded it: the record keeps a copy of its bytes.
  if (!record.contains("btf")) return make_error(Errc::kNotFound, "there is no BTF object with id {}", id);
  return load_btf_as(BPFVM_TRY(parse_hex_bytes(record.at("btf").get<std::string>())), id);
}

Result<std::shared_ptr<Map>> Runtime::open_map_by_id(std::uint32_t id) {
  if (auto m = map_by_id(id)) return m;
  const auto& r = registry();
  auto record = r ? r->find(ObjectKind::kMap, id) : std::nullopt;
  if (!record) return make_error(Errc::kNotFound, "there is no map with id {}", id);
  try {
    const std::string storage = record->value("storage", "");
    if (storage.empty() || !os::exists(storage)) {
      return make_error(Errc::kNotFound, "map {} has no shared memory another process can open", id);
    }
    auto impl = BPFVM_TRY(maps::open_shared_map(storage));
    MapCreateRequest req;
    req.def = impl->def();
    if (record->contains("btf_id")) {
      req.btf = BPFVM_TRY(open_btf_for(*record));
      req.btf_key_type_id = record->value("btf_key_type_id", 0u);
      req.btf_value_type_id = record->value("btf_value_type_id", 0u);
    }
    return register_map(std::move(impl), req);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kInvalid, "the registry record of map {} is damaged: {}", id, e.what());
  }
}

Result<std::shared_ptr<Program>> Runtime::open_program_by_id(std::uint32_t id) {
  if (auto p = program_by_id(id)) return p;
  const auto& r = registry();
  auto record = r ? r->find(ObjectKind::kProg, id) : std::nullopt;
  if (!record) return make_error(Errc::kNotFound, "there is no program with id {}", id);
  // Pinned, its loader gone: the pin keeps the program with its maps (as a pin on bpffs keeps them alive),
  // where the maps' own records may be gone.
  if (const auto pins = record->find("pins"); pins != record->end() && !Registry::owner_alive(*record)) {
    for (const auto& pin : *pins) {
      if (!pin.is_string() || !os::exists(pin.get<std::string>())) continue;
      auto object = open_pinned(pin.get<std::string>());
      if (auto* p = object ? std::get_if<std::shared_ptr<Program>>(&*object) : nullptr; p && (*p)->id() == id) return *p;
    }
  }
  try {
    const nlohmann::json& j = *record;
    ProgramLoadRequest req = BPFVM_TRY(program_request(j));
    req.id = id;
    req.mode = j.contains("jited") && vm::JitProgram::available() ? ExecMode::kJit : ExecMode::kInterpreter;
    req.jit_harden = j.value("jit_harden", false);
    for (const auto& m : j.at("map_ids")) req.maps.push_back(BPFVM_TRY(open_map_by_id(m.get<std::uint32_t>())));
    if (j.contains("btf_id")) req.btf = BPFVM_TRY(open_btf_for(j));
    return load_program(std::move(req));
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kInvalid, "the registry record of program {} is damaged: {}", id, e.what());
  }
}

template <typename T>
std::shared_ptr<T> Runtime::find(int kind, std::uint32_t id) const {
  std::lock_guard lock(mutex_);
  auto it = registry_[kind].find(id);
  if (it == registry_[kind].end()) return nullptr;
  return std::static_pointer_cast<T>(it->second.lock());
}

std::shared_ptr<Map> Runtime::map_by_id(std::uint32_t id) const { return find<Map>(kMap, id); }
std::shared_ptr<Program> Runtime::program_by_id(std::uint32_t id) const { return find<Program>(kProg, id); }
std::shared_ptr<BtfObject> Runtime::btf_by_id(std::uint32_t id) const { return find<BtfObject>(kBtf, id); }
std::shared_ptr<Link> Runtime::link_by_id(std::uint32_t id) const { return find<Link>(kLink, id); }

std::uint32_t Runtime::next_id(int kind, std::uint32_t after) const {
  if (kind < 0 || kind > 3) return 0;
  std::lock_guard lock(mutex_);
  for (auto it = registry_[kind].upper_bound(after); it != registry_[kind].end(); ++it) {
    if (!it->second.expired()) return it->first;
  }
  return 0;
}

Result<std::shared_ptr<Map>> Runtime::create_map(const MapCreateRequest& request) {
  if (request.def.name.size() >= BPF_OBJ_NAME_LEN) {
    return make_error(Errc::kInvalid, "map name '{}' is longer than {} characters", request.def.name, BPF_OBJ_NAME_LEN - 1);
  }
  // Maps live in shared memory under the pin root, so that a pin can hand the same map to another
  // process (see pin.cpp).
  BPFVM_TRY(prepare_pin_root());
  const std::string storage = BPFVM_TRY(map_storage_dir(pin_root_));
  maps::MapDef def = request.def;
  // Local storages need BTF for their key and value (bpf_local_storage_map_alloc_check: user space
  // dumps them by it), of the sizes the map says (map_check_btf).
  if (maps::ObjectMap::is_local_storage(def.type)) {
    if (!request.btf || !request.btf_key_type_id || !request.btf_value_type_id) {
      return make_error(Errc::kInvalid, "a {} map needs BTF for its key and value (btf_fd, btf_key_type_id, btf_value_type_id)",
                        maps::map_type_name(def.type));
    }
  }
  // A struct bpf_spin_lock in the value (found through BTF, as the kernel finds it).
  if (request.btf && request.btf_value_type_id) {
    def.spin_lock_off = BPFVM_TRY(request.btf->btf().find_struct_member(request.btf_value_type_id, "bpf_spin_lock"));
    def.timer_off = BPFVM_TRY(request.btf->btf().find_struct_member(request.btf_value_type_id, "bpf_timer"));
    // kptr fields the kernel does not know fail the map's creation (btf_parse_fields: EINVAL).
    for (const auto& k : BPFVM_TRY(request.btf->btf().kptr_fields(request.btf_value_type_id))) def.kptr_offs.push_back(k.offset);
  }
  // (BTF that does not fit the map is checked after the map's own rules, which come first in the kernel.)
  auto impl = BPFVM_TRY(maps::create_map(def, request.inner ? &*request.inner : nullptr, storage));
  if (maps::ObjectMap::handles(def.type) && request.btf && request.btf_value_type_id) {
    const obj::Btf& btf = request.btf->btf();
    if (request.btf_value_type_id >= btf.type_count() || request.btf_key_type_id >= btf.type_count() ||
        btf.type_size(request.btf_value_type_id) != def.value_size ||
        (request.btf_key_type_id && btf.type_size(request.btf_key_type_id) != def.key_size)) {
      return make_error(Errc::kInvalid, "the BTF key and value types are not of the map's key_size and value_size");
    }
  }
  return register_map(std::move(impl), request);
}

Result<std::shared_ptr<Map>> Runtime::register_map(std::shared_ptr<maps::Map> impl, const MapCreateRequest& request) {
  if (request.btf) {
    const auto n = request.btf->btf().type_count();
    if (request.btf_key_type_id >= n || request.btf_value_type_id >= n) {
      return make_error(Errc::kInvalid, "BTF key or value type id is out of range");
    }
  }
  // A shared map another process registered already has its id (in its header).
  const bool fresh = impl->id() == 0;
  if (fresh) impl->set_id(new_id(kMap));
  auto map = std::make_shared<Map>(std::move(impl), request.btf, request.btf_key_type_id, request.btf_value_type_id);
  map->set_registration(publish(ObjectKind::kMap, map->id(), map_record(*map), fresh));
  std::lock_guard lock(mutex_);
  registry_[kMap][map->id()] = map;
  return map;
}

Result<std::shared_ptr<BtfObject>> Runtime::load_btf(std::span<const std::uint8_t> bytes) {
  return load_btf_as(bytes, 0);
}

Result<std::shared_ptr<BtfObject>> Runtime::load_btf_as(std::span<const std::uint8_t> bytes, std::uint32_t id) {
  auto btf = BPFVM_TRY(obj::Btf::parse(bytes));
  auto object = std::make_shared<BtfObject>(id ? id : new_id(kBtf), std::move(btf));
  object->set_registration(publish(ObjectKind::kBtf, object->id(), btf_record(*object), id == 0));
  std::lock_guard lock(mutex_);
  registry_[kBtf][object->id()] = object;
  return object;
}

Result<std::shared_ptr<Link>> Runtime::create_link(std::shared_ptr<Program> prog, std::uint32_t attach_type,
                                                   std::uint32_t target, LinkTarget where) {
  if (!prog) return make_error(Errc::kInvalid, "no program to link");
  if (prog->type() == BPF_PROG_TYPE_EXT) {
    // (its link would put it in place of the function in the running program: bpfvm's engines call
    // their subprograms directly, and do not redirect a call while the program runs)
    return make_error(Errc::kNotSupported,
                      "extension program '{}' is verified against {}() of its target, but bpfvm does not replace "
                      "functions of loaded programs",
                      prog->name(), prog->attach_target());
  }
  auto link = std::make_shared<Link>(new_id(kLink), std::move(prog), attach_type, target, std::move(where));
  link->set_registration(publish(ObjectKind::kLink, link->id(), link_record(*link), true));
  std::lock_guard lock(mutex_);
  registry_[kLink][link->id()] = link;
  // A loader run by root serves the agents of processes in its scope that became other users (broker.hpp).
  if (!broker_ && ::geteuid() == 0 && system_) {
    if (auto b = Broker::start(pin_root_, system_)) broker_ = std::move(*b);
  }
  return link;
}

Result<std::shared_ptr<Program>> Runtime::load_program(ProgramLoadRequest request, std::string* log) {
  auto fail = [&](Error e) -> Result<std::shared_ptr<Program>> {
    if (log) *log = e.to_string();
    return e;
  };
  // An extension (freplace) is verified as the program it extends is, from the entry of the function
  // it replaces: its type's context, helpers and return rule (the kernel's resolve_prog_type), its
  // arguments from its own BTF. It is loaded verified; replacing the function (its link) is not done.
  const bool extension = request.prog_type == BPF_PROG_TYPE_EXT;
  std::string replaced;
  if (extension) {
    auto name = check_extension_target(request);
    if (!name) {
      if (log) *log = name.error().to_string() + "\n";
      return std::move(name).error();
    }
    replaced = std::move(*name);
    const Program& target = *request.attach_program;
    request.prog_type = target.type();
    request.expected_attach_type = target.expected_attach_type();
    request.attach_target = target.attach_target();
  } else if (request.attach_program) {
    return fail(make_error(Errc::kNotSupported, "a program (attach_prog_fd) as the target of a {} program: bpfvm "
                                                "takes programs as targets of extensions (freplace) only",
                           request.prog_type));
  }
  const std::uint32_t replaced_btf_id = request.attach_btf_id;
  if (extension) request.attach_btf_id = request.attach_program->attach_btf_id();
  // Types bpfvm runs have a context of its own; the others it knows the kernel's rules for (cgroup and
  // socket hooks, lwt, flow dissector...) are verified and loaded, as the kernel loads programs that
  // only run once attached, but never run: their hooks are kernel objects.
  const bool runs = !extension && runs_in_user_space(request.prog_type, request.expected_attach_type);
  if (request.prog_type == BPF_PROG_TYPE_LSM) {
    // (lsm: its hooks are kernel functions)
    return fail(make_error(Errc::kNotSupported,
                           "program type {} (lsm) attaches to security hooks of the kernel, which have no events in "
                           "user space: bpfvm runs programs on syscall, process and signal tracepoints and uprobes",
                           request.prog_type));
  }
  if (!runs && !extension && !verified_only_type(request.prog_type) && request.prog_type != BPF_PROG_TYPE_TRACING &&
      request.prog_type != BPF_PROG_TYPE_STRUCT_OPS) {
    return fail(make_error(Errc::kInvalid, "program type {} is not supported by bpfvm", request.prog_type));
  }
  // bpf_prog_load_check_attach: sleepable programs are fentry/fexit/fmod_ret, lsm, iterators, uprobes,
  // struct_ops and syscall programs.
  if (request.sleepable && request.prog_type != BPF_PROG_TYPE_TRACING && request.prog_type != BPF_PROG_TYPE_KPROBE &&
      request.prog_type != BPF_PROG_TYPE_STRUCT_OPS && request.prog_type != BPF_PROG_TYPE_SYSCALL) {
    return fail(make_error(Errc::kInvalid, "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable"));
  }
  if (request.prog_type == BPF_PROG_TYPE_SYSCALL && !request.sleepable) {
    return fail(make_error(Errc::kInvalid, "Syscall programs can only be sleepable (BPF_F_SLEEPABLE)"));
  }
  if (request.mode == ExecMode::kJit && !vm::JitProgram::available()) {
    return fail(make_error(Errc::kNotSupported, "the JIT needs an x86-64 host"));
  }
  if (request.insns.empty()) return fail(make_error(Errc::kInvalid, "the program has no instructions"));
  if (request.insns.size() > kMaxInsns) {
    return fail(make_error(Errc::kTooBig, "the program has {} instructions, more than {}", request.insns.size(), kMaxInsns));
  }
  if (request.name.size() >= BPF_OBJ_NAME_LEN) request.name.resize(BPF_OBJ_NAME_LEN - 1);  // as libbpf truncates
  if (auto r = check_btf_info(request, request.insns.size()); !r) return fail(std::move(r).error());
  if (auto r = check_helper_calls(request); !r) return fail(std::move(r).error());

  Program::Parts parts;
  parts.prog_type = request.prog_type;
  parts.expected_attach_type = request.expected_attach_type;
  parts.sleepable = request.sleepable;
  parts.name = request.name;
  parts.license = request.license;
  parts.original = request.insns;
  parts.tag = program_tag(request.insns);

  // Map references: which maps, and the rewritten program as bpftool sees it (map ids) and as it runs
  // (addresses).
  std::vector<isa::RawInsn> code = request.insns;
  std::vector<std::size_t> lddw_slots;
  std::vector<std::uint64_t> lddw_values;
  std::set<const Map*> seen;
  for (std::size_t i = 0; i < code.size(); ++i) {
    isa::RawInsn& in = code[i];
    if (!in.is_lddw()) continue;
    if (i + 1 >= code.size()) return fail(make_error(Errc::kInvalid, "the last instruction is half a 64-bit load").at_insn(i));
    if (in.src == BPF_PSEUDO_MAP_IDX || in.src == BPF_PSEUDO_MAP_IDX_VALUE) {
      const auto index = static_cast<std::uint32_t>(in.imm);
      if (index >= request.maps.size() || !request.maps[index]) {
        return fail(make_error(Errc::kInvalid, "map index {} is out of range", index).at_insn(i));
      }
      const auto& map = request.maps[index];
      if (seen.insert(map.get()).second) {
        // A program has one cgroup storage of each type (bpf_cgroup_storage_assign): the storage
        // bpf_get_local_storage returns.
        const std::uint32_t t = map->def().type;
        if (t == BPF_MAP_TYPE_CGROUP_STORAGE || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE) {
          for (const auto& other : parts.maps) {
            if (other->def().type == t) {
              return fail(make_error(Errc::kBusy, "only one cgroup storage of each type is allowed").at_insn(i));
            }
          }
          (t == BPF_MAP_TYPE_CGROUP_STORAGE ? parts.cgroup_storage_size : parts.percpu_cgroup_storage_size) =
              map->def().value_size;
        }
        parts.maps.push_back(map);
      }
      std::uint64_t value = reinterpret_cast<std::uint64_t>(&map->impl());
      if (in.src == BPF_PSEUDO_MAP_IDX_VALUE) {
        const auto off = static_cast<std::uint32_t>(code[i + 1].imm);
        std::uint8_t* direct = map->direct_value();
        if (!direct) return fail(make_error(Errc::kInvalid, "map '{}' has no direct value access", map->name()).at_insn(i));
        if (off >= map->def().value_size) {
          return fail(make_error(Errc::kAccess, "invalid access to map value pointer, value_size={} off={}",
                                 map->def().value_size, off).at_insn(i));
        }
        value = reinterpret_cast<std::uint64_t>(direct + off);
      }
      in.src = in.src == BPF_PSEUDO_MAP_IDX ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;  // as bpftool shows it
      in.imm = static_cast<std::int32_t>(map->id());
      lddw_slots.push_back(i);
      lddw_values.push_back(value);
    } else if (in.src == BPF_PSEUDO_FUNC) {
      // A callback's address: the interpreter runs callbacks by instruction index.
      const std::int64_t target = static_cast<std::int64_t>(i) + 1 + in.imm;
      if (target < 0 || target >= static_cast<std::int64_t>(code.size())) {
        return fail(make_error(Errc::kInvalid, "function reference to {} is outside the program", target).at_insn(i));
      }
      lddw_slots.push_back(i);
      lddw_values.push_back(static_cast<std::uint64_t>(target));
    } else if (in.src != 0) {
      return fail(make_error(Errc::kInvalid, "64-bit immediate load with pseudo source {} is not supported", in.src).at_insn(i));
    }
    ++i;
  }
  if (auto r = check_btf_info(request, code.size()); !r) return fail(std::move(r).error());
  // (Which maps a program type may use, check_map_prog_compatibility, is the verifier's first check.)
  // The verifier: a program it proves safe runs unchecked; no other is loaded.
  std::vector<verifier::MapInfo> map_infos;
  for (const auto& m : request.maps) {
    map_infos.push_back(m ? VerifierPlatform::map_info(m->def()) : verifier::MapInfo{});
    // A frozen read-only global (.rodata after BPF_MAP_FREEZE): the verifier reads its constants.
    verifier::MapInfo& info = map_infos.back();
    if (m && m->btf() && m->btf_value_type_id()) {
      if (auto r = VerifierPlatform::add_kptrs(info, m->btf()->btf(), m->btf_value_type_id()); !r) return fail(std::move(r).error());
    }
    if (m && info.read_only && info.direct_value && m->impl().frozen()) {
      const std::uint32_t zero = 0;
      if (const auto* v = static_cast<const std::uint8_t*>(m->impl().lookup_in_place(&zero))) {
        info.frozen_value.assign(v, v + info.value_size);
      }
    }
  }
  for (std::size_t k = 0; k < request.maps.size(); ++k) {
    if (!request.maps[k]) continue;
    if (const maps::MapDef* inner = request.maps[k]->impl().inner_def()) {
      map_infos[k].inner = static_cast<std::int64_t>(map_infos.size());
      map_infos.push_back(VerifierPlatform::map_info(*inner));
    }
  }
  VerifierPlatform platform(request.prog_type, std::move(map_infos), gpl_compatible(request.license));
  platform.set_expected_attach_type(request.expected_attach_type);
  platform.set_sleepable(request.sleepable);
  if (request.btf) platform.set_global_functions(request.btf->btf(), request.func_info, extension);
  {
    obj::ProgramKind kind;
    kind.expected_attach_type = request.expected_attach_type;
    kind.attach_target = request.attach_target;
    kernel_types_for_helpers(platform, request.insns);
    auto target = tracing_target(platform, request.prog_type, kind, request.attach_btf_id);
    if (!target) {
      if (log) *log = target.error().to_string() + "\n";
      return fail(std::move(target).error());
    }
    parts.attach_btf_id = *target;
    if (*target) {
      parts.attach_target = platform.target_name();
      // (a BTF tracepoint's type is btf_trace_NAME; its name is NAME)
      if (parts.attach_target.starts_with("btf_trace_")) parts.attach_target.erase(0, 10);
      parts.attach_args = platform.target_params();
    }
  }
  verifier::Rejection rejection;
  std::string trace;
  verifier::VerifierOptions vopts;
  vopts.rejection = &rejection;
  vopts.log_level = request.log_level & 3;
  vopts.log = vopts.log_level ? &trace : nullptr;
  std::vector<std::int64_t> call_maps;
  vopts.call_maps = &call_maps;
  std::vector<bool> probe_loads;
  vopts.probe_loads = &probe_loads;
  vopts.entry_is_global = extension;
  auto verdict = verifier::verify(request.insns, platform, vopts);
  if (log) *log = trace;
  if (extension) {
    parts.prog_type = BPF_PROG_TYPE_EXT;
    parts.attach_btf_id = replaced_btf_id;
    parts.attach_target = replaced;
  }
  if (verdict && !runs && !extension && request.prog_type == BPF_PROG_TYPE_TRACING) {
    // Judged as the kernel judges it, then refused: fmod_ret and iterators work on kernel objects.
    Error e = make_error(Errc::kNotSupported,
                         "the program is safe (verified against the kernel's '{}'), but fmod_ret and iterator "
                         "programs act on the kernel's own objects, which user space does not have: bpfvm runs "
                         "fentry/fexit on the kernel functions that are syscall entries, tp_btf on sys_enter and "
                         "sys_exit, syscall, process and signal tracepoints, kprobes on syscall entries and uprobes",
                         platform.btf_type_name(parts.attach_btf_id));
    if (log) *log = trace + e.to_string() + "\n";
    return e;
  }
  if (verdict) {
    parts.verified = *verdict;
  } else {
    Error e = std::move(verdict).error();
    if (log) *log = trace + verifier::explain(
                              rejection, request.insns,
                              source_lines(request.btf ? &request.btf->btf() : nullptr, request.line_info,
                                           request.insns.size()));
    return e;
  }
  // Verified, so no run reaches a poisoned call (the verifier refuses one it reaches): dead code, which the
  // kernel removes (opt_remove_dead_code); here each becomes r0 = 0, so that the engines have nothing to resolve.
  for (isa::RawInsn& in : code) {
    if (in.opcode == 0x85 && in.src == 0 && isa::poison_of_call(in.imm) != isa::Poison::kNone) in = isa::RawInsn{0xb7, 0, 0, 0, 0};
  }
  // (A tracing program's context is its target's arguments as they are.)
  if (runs && request.prog_type != BPF_PROG_TYPE_TRACING) {
    if (auto r = rewrite_context_accesses(request.prog_type, code); !r) return fail(std::move(r).error());
  }
  if (request.prog_type == BPF_PROG_TYPE_SYSCALL) {
    // The furthest context bytes it touches (the kernel's max_ctx_offset): a test run's ctx_in holds them.
    auto accesses = verifier::find_ctx_accesses(code);
    if (!accesses) return fail(std::move(accesses).error());
    for (const verifier::CtxAccess& a : *accesses) {
      parts.max_ctx_offset = std::max(parts.max_ctx_offset, static_cast<std::uint32_t>(a.offset + a.size));
    }
  }
  // Loads through pointers to kernel objects are fault-tolerant in both engines, as the kernel's
  // BPF_PROBE_MEM loads are.
  vm::ProbeLoads probes;
  if (std::find(probe_loads.begin(), probe_loads.end(), true) != probe_loads.end()) {
    probes.read = helpers::probe_load;
    probes.at = std::move(probe_loads);
  }
  parts.xlated = code;
  // What a pin keeps (pin.cpp) is the program as loaded with the maps it uses (parts.maps), so its map
  // references are renumbered into that list: fd_array indexes (an object's every map) would not fit.
  for (std::size_t i = 0; i + 1 < parts.original.size(); ++i) {
    isa::RawInsn& in = parts.original[i];
    if (!in.is_lddw()) continue;
    if (in.src == BPF_PSEUDO_MAP_IDX || in.src == BPF_PSEUDO_MAP_IDX_VALUE) {
      const Map* used = request.maps[static_cast<std::uint32_t>(in.imm)].get();
      for (std::size_t k = 0; k < parts.maps.size(); ++k) {
        if (parts.maps[k].get() == used) in.imm = static_cast<std::int32_t>(k);
      }
    }
    ++i;
  }
  for (std::size_t k = 0; k < lddw_slots.size(); ++k) {
    const std::size_t i = lddw_slots[k];
    code[i].src = 0;
    code[i].imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(lddw_values[k]));
    code[i + 1].imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(lddw_values[k] >> 32));
  }
  // Verified above: both engines run it unchecked. A type bpfvm only verifies gets no engine.
  if (runs && request.mode == ExecMode::kJit) {
    vm::JitOptions options;
    options.harden = request.jit_harden;
    // Lookups in a map the verifier proved a call passes skip the helper, as the kernel's fixups make
    // them: an array's become address arithmetic, other maps' call the map's own lookup (the maps live
    // as long as the program, which holds them). Handles past request.maps are map-in-map templates:
    // the inner map is only known at run time, so those calls stay calls.
    options.map_lookup = helper_table().find(BPF_FUNC_map_lookup_elem);
    options.call_maps = std::move(call_maps);
    options.probe_loads = std::move(probes);
    options.cpu_slot_tls = maps::this_cpu_tls_offset();
    options.cpu_slot = [] { return maps::this_cpu(); };
    for (const auto& m : request.maps) {
      vm::JitOptions::KnownMap& known = options.maps.emplace_back();
      if (!m) continue;
      if (auto arr = m->impl().direct_array()) {
        known.values = reinterpret_cast<std::uint64_t>(arr->values);
        known.stride = static_cast<std::uint32_t>(arr->stride);
        known.max_entries = arr->max_entries;
        known.cpu_stride = static_cast<std::uint32_t>(arr->cpu_stride);
      } else {
        known.lookup = m->impl().program_lookup();
      }
    }
    // What a RunEnv answers: the CPU and the task's ids are loads, not calls.
    static_assert(offsetof(helpers::Task, tgid) == offsetof(helpers::Task, pid) + 4, "pid_tgid is one u64");
    options.user_fields = {
        {helper_table().find(BPF_FUNC_get_smp_processor_id), static_cast<std::int32_t>(offsetof(helpers::RunEnv, cpu)), 4},
        {helper_table().find(BPF_FUNC_get_current_pid_tgid),
         static_cast<std::int32_t>(offsetof(helpers::RunEnv, task) + offsetof(helpers::Task, pid)), 8},
    };
    auto jit = vm::JitProgram::compile(code, helper_table(), options);
    if (!jit) return fail(std::move(jit).error());
    parts.jit = std::move(*jit);
  } else if (runs) {
    vm::InterpreterOptions options;
    options.probe_loads = std::move(probes);
    auto interp = vm::Interpreter::load(code, helper_table(), std::move(options));
    if (!interp) return fail(std::move(interp).error());
    parts.interpreter = std::move(*interp);
  }
  parts.btf = std::move(request.btf);
  parts.func_info = std::move(request.func_info);
  parts.line_info = std::move(request.line_info);
  // Programs that print get the trace pipe (made on first use).
  for (const isa::RawInsn& in : parts.original) {
    if (in.opcode == 0x85 && in.src == 0 && in.imm == BPF_FUNC_trace_printk) {
      auto pipe = trace_pipe();
      if (!pipe) return fail(std::move(pipe).error().with_context("trace pipe"));
      parts.trace_pipe = *pipe;
      break;
    }
  }
  const bool timers = std::any_of(parts.original.begin(), parts.original.end(), [](const isa::RawInsn& in) {
    return in.opcode == 0x85 && in.src == 0 && (in.imm == BPF_FUNC_timer_set_callback || in.imm == BPF_FUNC_timer_start);
  });
  parts.id = request.id ? request.id : new_id(kProg);
  auto prog = std::make_shared<Program>(std::move(parts));
  prog->set_registration(publish(ObjectKind::kProg, prog->id(), program_record(*prog), request.id == 0));
  // Its timers' thread and queue are made now, not in a run (helpers/timers.hpp).
  if (timers) helpers::prepare_timers(*prog);
  if (const auto& r = registry()) {
    // The loader makes the profile page; a process that opens the program by id (an agent running it
    // in a traced process) adds its runs to the same page, so `bpfvm prog profile` sees them all.
    const std::string path = fmt::format("{}/profile-{}", r->directory(), prog->id());
    if (auto profile = request.id == 0 ? ProgramProfile::create(path) : ProgramProfile::open(path)) {
      prog->set_profile(std::move(*profile));
    }
  }
  std::lock_guard lock(mutex_);
  registry_[kProg][prog->id()] = prog;
  return prog;
}

Result<std::shared_ptr<maps::RingBuffer>> Runtime::trace_pipe() {
  std::lock_guard lock(mutex_);
  if (!trace_pipe_) {
    BPFVM_TRY(prepare_pin_root());
    const std::string storage = BPFVM_TRY(map_storage_dir(pin_root_));
    trace_pipe_ = BPFVM_TRY(maps::RingBuffer::open_or_create(storage + "/.trace_pipe", 1u << 20, "trace_pipe"));
  }
  return trace_pipe_;
}

Result<std::shared_ptr<maps::PerfEvent>> Runtime::make_perf_event(std::uint32_t cpu, std::size_t data_pages) {
  if (cpu >= maps::possible_cpus()) return make_error(Errc::kInvalid, "CPU {} does not exist", cpu);
  BPFVM_TRY(prepare_pin_root());
  const std::string dir = BPFVM_TRY(map_storage_dir(pin_root_));
  return maps::PerfEvent::create(cpu, data_pages, dir);
}

Result<int> Runtime::open_perf_event(std::uint32_t cpu, std::size_t data_pages) {
  auto event = BPFVM_TRY(make_perf_event(cpu, data_pages));
  const int fd = install_fd(std::move(event));
  if (fd < 0) return make_error(Errc::kNoSpace, "no descriptor for the perf event: {}", std::strerror(errno));
  return fd;
}

int Runtime::install_fd(AnyObject object) {
  if (real_fds_) {
    errno = 0;
    auto event = os::EventFd::create();
    if (!event) {
      if (errno == 0) errno = EMFILE;  // (eventfd's own errno otherwise: EMFILE, ENFILE, ENOMEM)
      return -1;
    }
    const int fd = event->release();
    std::lock_guard lock(mutex_);
    fds_[fd] = std::move(object);
    return fd;
  }
  std::lock_guard lock(mutex_);
  const int fd = next_fd_++;
  fds_[fd] = std::move(object);
  return fd;
}

bool Runtime::forget_fd(int fd) {
  std::lock_guard lock(mutex_);
  return fds_.erase(fd) != 0;
}

void Runtime::set_fd(int fd, AnyObject object) {
  std::lock_guard lock(mutex_);
  fds_[fd] = std::move(object);
}

void Runtime::alias_fd(int from, int to) {
  std::lock_guard lock(mutex_);
  auto it = fds_.find(from);
  if (it == fds_.end()) {
    fds_.erase(to);
    return;
  }
  AnyObject object = it->second;
  fds_[to] = std::move(object);
}

void Runtime::note_kernel_counter(int fd, const KernelCounter& counter) {
  std::lock_guard lock(mutex_);
  kernel_counters_[fd] = counter;
}

std::optional<Runtime::KernelCounter> Runtime::kernel_counter(int fd) const {
  std::optional<KernelCounter> found;
  {
    std::lock_guard lock(mutex_);
    if (auto it = kernel_counters_.find(fd); it != kernel_counters_.end()) found = it->second;
  }
  // The number may since name another file (the application closed the event): only a perf event's.
  if (!found || !os::is_perf_event_fd(fd)) return std::nullopt;
  return found;
}

bool Runtime::owns_fd(int fd) const {
  std::lock_guard lock(mutex_);
  return fds_.count(fd) != 0;
}

Result<AnyObject> Runtime::object_for_fd(int fd) const {
  std::lock_guard lock(mutex_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return make_error(Errc::kBadFd, "fd {} is not open", fd);
  return it->second;
}

Result<void> Runtime::close_fd(int fd) {
  {
    std::lock_guard lock(mutex_);
    if (fds_.erase(fd) == 0) return make_error(Errc::kBadFd, "fd {} is not open", fd);
  }
  if (real_fds_) os::EventFd::adopt(fd);  // closed as it goes
  return {};
}

Result<std::shared_ptr<Link>> Runtime::link_perf_event(std::shared_ptr<Program> prog, const PerfAttachPoint& point,
                                                       std::uint64_t cookie) {
  if (!prog) return make_error(Errc::kInvalid, "no program to link");
  const std::string& kind = point.where.kind;
  const bool probe = kind == "uprobe" || kind == "uretprobe" || kind == "usdt" || kind == "kprobe" || kind == "kretprobe";
  const std::uint32_t want = probe ? BPF_PROG_TYPE_KPROBE : BPF_PROG_TYPE_TRACEPOINT;
  // perf_event_set_bpf_prog: a tracepoint event takes tracepoint programs, a k/uprobe event kprobe ones.
  if (prog->type() != want) {
    return make_error(Errc::kInvalid, "a {} program cannot attach to a {} event", prog->type(), kind);
  }
  LinkTarget where = point.where;
  where.cookie = cookie;
  return create_link(std::move(prog), BPF_PERF_EVENT, 0, std::move(where));
}

}  // namespace bpfvm::runtime
