#include "bpfvm/verifier/cfg.hpp"

#include <algorithm>

#include <linux/bpf.h>

#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/validate.hpp"

namespace bpfvm::verifier {

std::uint32_t Cfg::subprog_of(std::uint32_t slot) const {
  auto it = std::upper_bound(subprogs.begin(), subprogs.end(), slot,
                             [](std::uint32_t s, const Subprogram& p) { return s < p.start; });
  return static_cast<std::uint32_t>(it - subprogs.begin()) - 1;
}

namespace {

bool is_local_call(const isa::Insn& insn) {
  const auto* c = std::get_if<isa::Call>(&insn);
  return c && c->kind == isa::Call::Kind::kLocal;
}
bool is_func_ref(const isa::Insn& insn) {
  const auto* l = std::get_if<isa::LoadImm64>(&insn);
  return l && l->pseudo == isa::Pseudo::kFunc;
}

}  // namespace

Result<Cfg> build_cfg(std::span<const isa::RawInsn> program) {
  BPFVM_TRY(isa::validate(program));
  Cfg cfg;
  const std::size_t n = program.size();
  cfg.insns.resize(n, isa::Exit{});
  cfg.starts.assign(n, 0);
  cfg.successors.assign(n, {-1, -1});

  // Subprograms start at 0 and at every function a call or a function reference names.
  std::vector<std::uint32_t> entries = {0};
  for (std::size_t i = 0; i < n;) {
    isa::Insn insn = *isa::decode(program.subspan(i));  // validate decoded it already
    const int slots = isa::slots_of(insn);
    if (is_local_call(insn) || is_func_ref(insn)) entries.push_back(static_cast<std::uint32_t>(*isa::branch_target(insn, i)));
    cfg.starts[i] = 1;
    for (int k = 0; k < slots; ++k) cfg.insns[i + static_cast<std::size_t>(k)] = insn;
    i += static_cast<std::size_t>(slots);
  }
  std::sort(entries.begin(), entries.end());
  entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  for (std::size_t k = 0; k < entries.size(); ++k) {
    cfg.subprogs.push_back({entries[k], k + 1 < entries.size() ? entries[k + 1] : static_cast<std::uint32_t>(n)});
  }

  // Successors; jumps stay inside their subprogram, and each subprogram ends with an exit or a jump.
  for (const Subprogram& sub : cfg.subprogs) {
    std::uint32_t last = sub.start;
    for (std::uint32_t i = sub.start; i < sub.end; ++i) {
      if (!cfg.starts[i]) continue;
      last = i;
      const isa::Insn& insn = cfg.insns[i];
      const auto next = static_cast<std::int32_t>(i + static_cast<std::uint32_t>(isa::slots_of(insn)));
      auto& succ = cfg.successors[i];
      if (std::holds_alternative<isa::Exit>(insn)) continue;
      if (std::holds_alternative<isa::Jump>(insn) || std::holds_alternative<isa::CondJump>(insn)) {
        const auto target = static_cast<std::int64_t>(*isa::branch_target(insn, i));
        if (target < sub.start || target >= sub.end) {
          return make_error(Errc::kInvalid, "jump out of range from insn {} to {}: a jump may not leave its function", i,
                            target)
              .at_insn(i);
        }
        if (std::holds_alternative<isa::Jump>(insn)) {
          succ = {static_cast<std::int32_t>(target), -1};
        } else {
          succ = {next, static_cast<std::int32_t>(target)};
          if (succ[1] == succ[0]) succ[1] = -1;
        }
        continue;
      }
      succ = {next, -1};
    }
    const isa::Insn& end = cfg.insns[last];
    if (!std::holds_alternative<isa::Exit>(end) && !std::holds_alternative<isa::Jump>(end)) {
      return make_error(Errc::kInvalid, "last insn is not an exit or jmp: function at insn {} runs into the next one",
                        sub.start)
          .at_insn(last);
    }
  }

  // Depth-first from the entry, entering functions where calls and references from reached code name
  // them: an edge to an instruction on the current path is a back edge (a loop).
  enum : std::uint8_t { kNew, kOnPath, kDone };
  std::vector<std::uint8_t> color(n, kNew);
  std::vector<std::uint8_t> subprog_reached(cfg.subprogs.size(), 0);
  std::vector<std::uint32_t> pending = {0};
  subprog_reached[0] = 1;
  while (!pending.empty()) {
    const std::uint32_t entry = pending.back();
    pending.pop_back();
    std::vector<std::pair<std::uint32_t, int>> stack = {{entry, 0}};  // (slot, next successor to visit)
    color[entry] = kOnPath;
    while (!stack.empty()) {
      auto& [slot, which] = stack.back();
      if (which == 0 && (is_local_call(cfg.insns[slot]) || is_func_ref(cfg.insns[slot]))) {
        const auto callee = static_cast<std::uint32_t>(*isa::branch_target(cfg.insns[slot], slot));
        const std::uint32_t k = cfg.subprog_of(callee);
        if (!subprog_reached[k]) {
          subprog_reached[k] = 1;
          pending.push_back(callee);
        }
      }
      if (which == 2) {
        color[slot] = kDone;
        stack.pop_back();
        continue;
      }
      const std::int32_t to = cfg.successors[slot][static_cast<std::size_t>(which)];
      ++which;
      if (to < 0) continue;
      const auto t = static_cast<std::uint32_t>(to);
      if (color[t] == kOnPath) {
        cfg.back_edges.emplace_back(slot, t);
      } else if (color[t] == kNew) {
        color[t] = kOnPath;
        stack.emplace_back(t, 0);
      }
    }
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    if (cfg.starts[i] && color[i] == kNew) {
      return make_error(Errc::kInvalid, "unreachable insn {}: no path from the entry leads here", i).at_insn(i);
    }
  }
  return cfg;
}

bool calls_callback(const isa::Insn& insn) {
  const auto* c = std::get_if<isa::Call>(&insn);
  return c && c->kind == isa::Call::Kind::kHelper &&
         (c->imm == BPF_FUNC_loop || c->imm == BPF_FUNC_for_each_map_elem || c->imm == BPF_FUNC_find_vma ||
          c->imm == BPF_FUNC_user_ringbuf_drain);
}

}  // namespace bpfvm::verifier
