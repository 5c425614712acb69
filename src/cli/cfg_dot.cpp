#include "cfg_dot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "bpfvm/verifier/cfg.hpp"

namespace bpfvm::cli {

namespace {

// Characters DOT's record labels give a meaning to.
std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '<' || c == '>' || c == '{' || c == '}' || c == '|' || c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Resolves nothing: bpftool's graph prints local calls as "call pc+N".
struct Plain : isa::SymbolResolver {
  explicit Plain(const isa::SymbolResolver* maps) : maps_(maps) {}
  std::optional<std::string> imm64(const isa::LoadImm64& l, std::size_t at) const override {
    return maps_ ? maps_->imm64(l, at) : std::nullopt;
  }
  const isa::SymbolResolver* maps_;
};

}  // namespace

Result<std::string> cfg_dot(std::span<const isa::RawInsn> insns, const isa::SymbolResolver* resolver) {
  const verifier::Cfg cfg = BPFVM_TRY(verifier::build_cfg(insns));
  const Plain plain(resolver);
  std::string out = "digraph \"DOT graph for eBPF program\" {\n";
  for (std::size_t f = 0; f < cfg.subprogs.size(); ++f) {
    const auto [start, end] = cfg.subprogs[f];
    // Leaders: the function's start, jump targets, and whatever follows a jump or an exit.
    std::set<std::uint32_t> leaders{start};
    for (std::uint32_t i = start; i < end; ++i) {
      if (!cfg.starts[i]) continue;
      const auto& succ = cfg.successors[i];
      const std::uint32_t next = i + (insns[i].is_lddw() ? 2 : 1);
      const bool branches = succ[1] >= 0 || succ[0] < 0 || (succ[0] >= 0 && static_cast<std::uint32_t>(succ[0]) != next);
      if (!branches) continue;
      for (std::int32_t s : succ) {
        if (s >= 0) leaders.insert(static_cast<std::uint32_t>(s));
      }
      if (next < end) leaders.insert(next);
    }
    std::map<std::uint32_t, int> block_of;  // leader -> node number (ENTRY 0, EXIT 1, blocks from 2)
    int n = 2;
    for (std::uint32_t l : leaders) block_of[l] = n++;
    out += fmt::format("subgraph \"cluster_{0}\" {{\n\tstyle=\"dashed\";\n\tcolor=\"black\";\n\tlabel=\"func_{0} ()\";\n", f);
    out += fmt::format("\tfn_{}_bb_0 [shape=Mdiamond,style=filled,label=\"ENTRY\"];\n\n", f);
    std::string edges = fmt::format(
        "\tfn_{0}_bb_0:s -> fn_{0}_bb_{1}:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n", f,
        block_of[start]);
    for (auto it = leaders.begin(); it != leaders.end(); ++it) {
      const std::uint32_t from = *it;
      const std::uint32_t to = std::next(it) == leaders.end() ? end : *std::next(it);
      const int node = block_of[from];
      std::string label;
      std::uint32_t last = from;
      for (std::uint32_t i = from; i < to; ++i) {
        if (!cfg.starts[i]) continue;
        last = i;
        label += fmt::format("{}{:4d}: {}\\l\\\n", i == from ? "{" : " | ", i - start,
                             escape(isa::format_insn(insns.subspan(i), i, &plain)));
      }
      out += fmt::format("\tfn_{}_bb_{} [shape=record,style=filled,label=\"{}}}\"];\n\n", f, node, label);
      const auto& succ = cfg.successors[last];
      std::vector<std::int32_t> targets;
      for (std::int32_t s : succ) {
        if (s >= 0) targets.push_back(s);
      }
      // The fall-through edge first, as bpftool lists them.
      const std::uint32_t next = last + (insns[last].is_lddw() ? 2 : 1);
      std::stable_sort(targets.begin(), targets.end(),
                       [&](std::int32_t a, std::int32_t b) { return (a == static_cast<std::int32_t>(next)) > (b == static_cast<std::int32_t>(next)); });
      if (targets.empty()) {
        edges += fmt::format(
            "\tfn_{0}_bb_{1}:s -> fn_{0}_bb_1:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n", f, node);
      }
      for (std::int32_t t : targets) {
        edges += fmt::format(
            "\tfn_{0}_bb_{1}:s -> fn_{0}_bb_{2}:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n", f,
            node, block_of[static_cast<std::uint32_t>(t)]);
      }
    }
    out += fmt::format("\tfn_{}_bb_1 [shape=Mdiamond,style=filled,label=\"EXIT\"];\n\n", f);
    out += edges;
    out += fmt::format("\tfn_{0}_bb_0:s -> fn_{0}_bb_1:n [style=\"invis\", constraint=true];\n}}\n", f);
  }
  out += "}\n";
  return out;
}

}  // namespace bpfvm::cli
