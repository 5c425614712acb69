#include "bpfvm/runtime/program_verifier.hpp"

#include <algorithm>
#include <tuple>

#include <linux/bpf.h>

#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/objects.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"

namespace bpfvm::runtime {

namespace {

verifier::MapInfo map_info(const obj::ObjectSpec& spec, const obj::MapSpec& m) {
  maps::MapDef def = map_def(m);
  if (spec.btf && m.btf_value_type_id) {
    if (auto off = spec.btf->find_struct_member(m.btf_value_type_id, "bpf_spin_lock")) def.spin_lock_off = *off;
    if (auto off = spec.btf->find_struct_member(m.btf_value_type_id, "bpf_timer")) def.timer_off = *off;
  }
  verifier::MapInfo info = VerifierPlatform::map_info(def);
  // (A value whose kptr tags the kernel refuses fails the map's creation, not the programs' verification.)
  if (spec.btf && m.btf_value_type_id) (void)VerifierPlatform::add_kptrs(info, *spec.btf, m.btf_value_type_id);
  // .rodata is frozen with its initial values before programs load (as libbpf does).
  if (m.origin == obj::MapOrigin::kRodata && info.read_only && info.direct_value && !m.initial_value.empty()) {
    info.frozen_value = m.initial_value;
    info.frozen_value.resize(info.value_size);
  }
  return info;
}

}  // namespace

Result<std::uint32_t> tracing_target(VerifierPlatform& platform, std::uint32_t prog_type, const obj::ProgramKind& kind,
                                     std::uint32_t attach_btf_id) {
  if (prog_type == BPF_PROG_TYPE_STRUCT_OPS) {
    // The struct_ops type by attach_btf_id and the member by the expected attach type (a loader's
    // BPF_PROG_LOAD), or both from the object's struct_ops variable (kind.attach_target "TYPE:MEMBER").
    auto btf = BPFVM_TRY(obj::running_kernel_btf());
    std::uint32_t member = kind.expected_attach_type;
    if (attach_btf_id == 0) std::tie(attach_btf_id, member) = BPFVM_TRY(VerifierPlatform::find_struct_ops_target(*btf, kind.attach_target));
    platform.set_expected_attach_type(member);
    BPFVM_TRY(platform.set_struct_ops_target(std::move(btf), attach_btf_id, member));
    return attach_btf_id;
  }
  if (prog_type == BPF_PROG_TYPE_LSM) {
    // The hook's function bpf_lsm_NAME by attach_btf_id, or by the SEC name (lsm/NAME), as libbpf finds
    // it (bpf_lsm_verify_prog: GPL only, a bpf_lsm_ function).
    auto btf = BPFVM_TRY(obj::running_kernel_btf());
    if (attach_btf_id == 0) {
      if (kind.attach_target.empty()) return make_error(Errc::kInvalid, "an LSM program needs a hook: SEC(\"lsm/HOOK\")");
      attach_btf_id = btf->find_func("bpf_lsm_" + kind.attach_target);
      if (attach_btf_id == 0) return make_error(Errc::kNotFound, "the kernel's BTF has no LSM hook '{}'", kind.attach_target);
    }
    BPFVM_TRY(platform.set_lsm_target(std::move(btf), attach_btf_id));
    return attach_btf_id;
  }
  if (prog_type != BPF_PROG_TYPE_TRACING) return 0u;
  auto btf = BPFVM_TRY(obj::running_kernel_btf());
  if (attach_btf_id == 0) {
    if (kind.attach_target.empty()) {
      return make_error(Errc::kInvalid, "a tracing program needs a target: SEC(\"fentry/FUNCTION\"), \"fexit/...\" or "
                                        "\"tp_btf/TRACEPOINT\" (or attach_btf_id)");
    }
    attach_btf_id = BPFVM_TRY(VerifierPlatform::find_btf_target(*btf, kind.expected_attach_type, kind.attach_target));
  }
  BPFVM_TRY(platform.set_btf_target(std::move(btf), attach_btf_id));
  return attach_btf_id;
}

void kernel_types_for_helpers(VerifierPlatform& platform, std::span<const isa::RawInsn> insns) {
  // Helpers that take or return kernel objects by BTF type (bpf_get_current_task_btf, bpf_skc_to_*...).
  const bool calls = std::any_of(insns.begin(), insns.end(), [](const isa::RawInsn& in) {
    if (in.opcode != 0x85 || in.src != 0) return false;
    const helpers::Prototype* p = helpers::find_prototype(in.imm);
    return p && (!p->btf_struct.empty() || !p->ret_struct.empty());
  });
  if (!calls && !platform.has_kptrs()) return;
  if (auto btf = obj::running_kernel_btf()) platform.use_kernel_types(*btf);
}

std::vector<isa::RawInsn> map_references_by_index(std::span<const isa::RawInsn> insns) {
  std::vector<isa::RawInsn> out(insns.begin(), insns.end());
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    isa::RawInsn& in = out[i];
    if (!in.is_lddw()) continue;
    if (in.src == BPF_PSEUDO_MAP_FD) in.src = BPF_PSEUDO_MAP_IDX;
    if (in.src == BPF_PSEUDO_MAP_VALUE) in.src = BPF_PSEUDO_MAP_IDX_VALUE;
    ++i;
  }
  return out;
}

std::vector<std::string> source_lines(const obj::Btf* btf, std::span<const obj::LineInfo> line_info, std::size_t insns) {
  std::vector<std::string> lines(insns);
  if (!btf) return lines;
  for (std::size_t k = 0; k < line_info.size(); ++k) {
    const obj::LineInfo& li = line_info[k];
    const std::size_t end = k + 1 < line_info.size() ? line_info[k + 1].insn : lines.size();
    std::string file(btf->string_at(li.file_name_off));
    if (const auto slash = file.rfind('/'); slash != std::string::npos) file = file.substr(slash + 1);
    std::string text(btf->string_at(li.line_off));
    const auto first = text.find_first_not_of(" \t");
    text = first == std::string::npos ? "" : text.substr(first);
    const std::string line = fmt::format("{}:{}: {}", file, li.line(), text);
    for (std::size_t i = li.insn; i < end && i < lines.size(); ++i) lines[i] = line;
  }
  return lines;
}

std::vector<ProgramVerdict> verify_object(const obj::ObjectSpec& spec, std::optional<std::uint32_t> prog_type,
                                          std::uint32_t log_level, std::uint32_t runs) {
  // The maps as the runtime would create them: handle i is spec.maps[i]; inner templates follow.
  std::vector<verifier::MapInfo> infos;
  for (const obj::MapSpec& m : spec.maps) infos.push_back(map_info(spec, m));
  for (std::size_t i = 0; i < spec.maps.size(); ++i) {
    if (!spec.maps[i].inner) continue;
    infos[i].inner = static_cast<std::int64_t>(infos.size());
    infos.push_back(map_info(spec, *spec.maps[i].inner));
  }
  std::vector<ProgramVerdict> out;
  for (const obj::ProgramSpec& p : spec.programs) {
    ProgramVerdict v;
    v.program = p.name;
    v.section = p.section;
    v.prog_type = prog_type.value_or(p.kind.prog_type);
    if (v.prog_type == BPF_PROG_TYPE_EXT && !p.link_error) {
      // (as the kernel's veristat: libbpf cannot prepare an extension without the program it extends)
      v.message = fmt::format("an extension program ({}) is judged against the program whose function it replaces, "
                              "which its loader names (bpf() BPF_PROG_LOAD's attach_prog_fd; libbpf: "
                              "bpf_program__set_attach_target): load it with that program",
                              p.section);
      v.explanation = v.message;
      out.push_back(std::move(v));
      continue;
    }
    if (p.link_error || v.prog_type == 0) {
      // Nothing to verify: say why, as the kernel's veristat reports a program libbpf could not prepare.
      v.message = p.link_error ? p.link_error->to_string()
                               : fmt::format("section '{}' does not name a program type (libbpf's section names, or an "
                                             "old loader's prefix such as 'socket1' or 'xdp_prog'); give one with -t",
                                             p.section);
      v.explanation = v.message;
      out.push_back(std::move(v));
      continue;
    }
    const std::vector<isa::RawInsn> insns = map_references_by_index(p.insns);
    VerifierPlatform platform(v.prog_type, infos, gpl_compatible(spec.license));
    // An overriding type (-t) keeps the section's attach type only when the section named that type.
    platform.set_expected_attach_type(v.prog_type == p.kind.prog_type ? p.kind.expected_attach_type : 0);
    platform.set_sleepable(v.prog_type == p.kind.prog_type && p.kind.sleepable);  // (a ".s" section: lsm.s/, fentry.s/...)
    if (spec.btf) platform.set_global_functions(*spec.btf, p.func_info);
    kernel_types_for_helpers(platform, insns);
    if (auto target = tracing_target(platform, v.prog_type, p.kind); !target) {
      v.message = target.error().to_string();
      v.explanation = v.message;
      out.push_back(std::move(v));
      continue;
    }
    verifier::Rejection rejection;
    verifier::VerifierOptions options;
    options.rejection = &rejection;
    options.stats = &v.stats;
    options.log_level = log_level;
    options.log = log_level ? &v.log : nullptr;
    const auto start = std::chrono::steady_clock::now();
    auto verdict = verifier::verify(insns, platform, options);
    v.duration = std::chrono::steady_clock::now() - start;
    for (std::uint32_t run = 1; run < runs && !options.log; ++run) {
      verifier::VerifierStats again_stats;
      verifier::Rejection again_rejection;
      verifier::VerifierOptions again = options;
      again.stats = &again_stats;
      again.rejection = &again_rejection;
      const auto again_start = std::chrono::steady_clock::now();
      (void)verifier::verify(insns, platform, again);
      v.duration = std::min<std::chrono::nanoseconds>(v.duration, std::chrono::steady_clock::now() - again_start);
    }
    v.accepted = static_cast<bool>(verdict);
    if (!verdict) {
      v.message = verdict.error().message();
      const auto lines = source_lines(spec.btf ? &*spec.btf : nullptr, p.line_info, insns.size());
      v.explanation = verifier::explain(rejection, insns, lines);
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace bpfvm::runtime
