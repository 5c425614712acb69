// bpfvm prog dump xlated PROG [{file FILE | [opcodes] [linum] | visual [--svg FILE]}]
// bpfvm prog dump jited PROG [{file FILE | [opcodes] [linum]}]
//   PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME } (any bpfvm process's program)
// xlated: the program as it runs, in the kernel's instruction format (bpftool's layout).
// The native code of a JIT-compiled program, as bpftool prints it (each function under its C
// declaration and "bpf_prog_<tag>_<name>:", "; source line" where a line begins, then "%4x:\t" and the
// instruction in AT&T syntax; opcodes adds the bytes on the next line, linum the file, line and column),
// and, beyond bpftool, each BPF instruction as a "; insn N:" line above the code it became. The entry
// trampoline and the out-of-line exits (faults, early exits) are listed under names of their own.
#include <fmt/format.h>

#include <cctype>
#include <map>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "bpfvm/vm/native_disasm.hpp"
#include "cfg_dot.hpp"
#include "command.hpp"
#include "object_ref.hpp"

namespace bpfvm::cli {

namespace {

// Loaded programs carry map ids where the object had map references (as bpftool prints them).
struct MapIds : isa::SymbolResolver {
  std::optional<std::string> imm64(const isa::LoadImm64& l, std::size_t) const override {
    if (l.pseudo == isa::Pseudo::kMapFd) return fmt::format("map[id:{}]", l.imm_lo);
    if (l.pseudo == isa::Pseudo::kMapValue) return fmt::format("map[id:{}][0]+{}", l.imm_lo, l.imm_hi);
    return std::nullopt;
  }
};


// What a listing shows of a loaded program besides its instructions, as bpftool shows it: where each
// function starts (its C declaration from BTF) and where each source line begins.
class Annotations {
 public:
  Annotations(const runtime::Program& prog, bool linum)
      : prog_(prog), btf_(prog.btf() ? &prog.btf()->btf() : nullptr), linum_(linum) {
    // Functions: func_info when the program has BTF, else the targets of local calls.
    const auto insns = prog.xlated();
    functions_[0] = 0;
    if (btf_ && !prog.func_info().empty()) {
      for (const obj::FuncInfo& f : prog.func_info()) functions_[f.insn] = f.type_id;
    } else {
      for (std::size_t i = 0; i < insns.size(); ++i) {
        const isa::RawInsn& in = insns[i];
        if (in.opcode == 0x85 && in.src == 1) functions_[i + 1 + static_cast<std::size_t>(in.imm)] = 0;
      }
    }
    if (btf_) {
      for (const obj::LineInfo& l : prog.line_info()) lines_[l.insn] = &l;
    }
  }

  // Before instruction i: the function header ("int f(...):", and with `symbol` the JIT image's name
  // "bpf_prog_<tag>_<name>:") and the source line that begins there.
  void print_before(std::size_t i, bool symbol) const {
    if (auto f = functions_.find(i); f != functions_.end()) {
      std::string name = i == 0 ? prog_.name() : fmt::format("F{}", i);
      if (btf_ && f->second) {
        if (auto decl = btf_->function_declaration(f->second)) fmt::print("{}:\n", bpftool_spacing(*decl));
        name = std::string(btf_->type_name(f->second));
      }
      if (symbol) fmt::print("bpf_prog_{}_{}:\n", tag(), name);
    }
    if (auto l = lines_.find(i); l != lines_.end()) {
      const std::string_view text = btf_->string_at(l->second->line_off);
      if (linum_) {
        fmt::print("; {} [file:{} line_num:{} line_col:{}]\n", text, btf_->string_at(l->second->file_name_off),
                   l->second->line(), l->second->column());
      } else {
        fmt::print("; {}\n", text);
      }
    }
  }

 private:
  // bpftool prints a pointer parameter with a space before its name: "struct xdp_md * ctx".
  static std::string bpftool_spacing(const std::string& decl) {
    std::string out;
    const std::size_t params = decl.find('(');
    for (std::size_t i = 0; i < decl.size(); ++i) {
      out += decl[i];
      const char next = i + 1 < decl.size() ? decl[i + 1] : '\0';
      if (params != std::string::npos && i > params && decl[i] == '*' && (std::isalpha(static_cast<unsigned char>(next)) || next == '_')) {
        out += ' ';
      }
    }
    return out;
  }

  std::string tag() const {
    std::string t;
    for (std::uint8_t b : prog_.tag()) t += fmt::format("{:02x}", b);
    return t;
  }

  const runtime::Program& prog_;
  const obj::Btf* btf_;
  bool linum_;
  std::map<std::size_t, std::uint32_t> functions_;  // first insn -> BTF FUNC id (0 if none)
  std::map<std::size_t, const obj::LineInfo*> lines_;
};

// prog dump xlated: the program as it runs (map references as map ids), "%4d: (op) text" per
// instruction as the kernel's verifier log and bpftool print it.
void print_xlated(const runtime::Program& prog, bool opcodes, bool linum) {
  const Annotations notes(prog, linum);
  const MapIds resolver;
  const auto insns = prog.xlated();
  for (std::size_t i = 0; i < insns.size(); ++i) {
    notes.print_before(i, false);
    fmt::print("{:4d}: {}\n", i, isa::format_insn(insns.subspan(i), i, &resolver));
    const std::size_t slots = insns[i].is_lddw() && i + 1 < insns.size() ? 2 : 1;
    if (opcodes) fmt::print("       {}\n", format_hex_bytes(isa::to_wire(insns.subspan(i, slots))));
    i += slots - 1;
  }
}

// prog dump jited: the native code under each BPF instruction it came from.
// Native code and where each BPF instruction starts in it.
struct NativeCode {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint32_t> offsets;
  std::span<const std::uint8_t> code() const { return bytes; }
  std::span<const std::uint32_t> insn_offsets() const { return offsets; }
};

void print_jited(const runtime::Program& prog, const NativeCode& jit, bool opcodes, bool linum) {
  const Annotations notes(prog, linum);
  const MapIds resolver;
  const auto insns = prog.xlated();
  const auto offsets = jit.insn_offsets();
  const std::vector<vm::NativeInsn> native = vm::disassemble_native(jit.code());
  std::size_t next_native = 0;
  // Native instructions that start before `end`.
  const auto native_until = [&](std::uint32_t end) {
    for (; next_native < native.size() && native[next_native].offset < end; ++next_native) {
      const vm::NativeInsn& n = native[next_native];
      fmt::print("{:4x}:\t{}\n", n.offset, n.text);
      if (opcodes) fmt::print("\t{}\n", format_hex_bytes(jit.code().subspan(n.offset, n.size)));
    }
  };
  fmt::print("bpfvm_entry:\n");
  native_until(offsets.empty() ? 0 : offsets[0]);
  for (std::size_t i = 0; i < insns.size(); ++i) {
    notes.print_before(i, true);
    const bool lddw = insns[i].is_lddw();
    fmt::print("; insn {}: {}\n", i, isa::format_insn(insns.subspan(i), i, &resolver));
    const std::size_t next = i + (lddw ? 2 : 1);
    native_until(next < offsets.size() ? offsets[next] : offsets.empty() ? 0 : offsets.back() + 1);
    if (lddw) ++i;
  }
  fmt::print("bpfvm_exits:\n");
  native_until(static_cast<std::uint32_t>(jit.code().size()));
}

int dump_one(const runtime::Program& program, const std::optional<NativeCode>& running, bool jited,
             const std::string& file, bool opcodes, bool linum, bool visual, const std::string& svg);

// The native code a program runs as in the process that loaded it (its record keeps it): a copy loaded
// here would embed this process's map addresses.
std::optional<NativeCode> running_code(runtime::Runtime& rt, std::uint32_t id) {
  const auto record = program_record_of(rt, id);
  if (!record || runtime::Registry::owned_here(*record) || !record->contains("jited")) return std::nullopt;
  try {
    auto bytes = parse_hex_bytes(record->at("jited").get<std::string>());
    if (!bytes) return std::nullopt;
    return NativeCode{std::move(*bytes), record->at("jited_insn_offsets").get<std::vector<std::uint32_t>>()};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// visual: the CFG in DOT; with --svg FILE, rendered by graphviz's dot instead.
int print_visual(const runtime::Program& prog, const std::string& svg) {
  const MapIds resolver;
  auto dot = cfg_dot(prog.xlated(), &resolver);
  if (!dot) {
    fmt::print(stderr, "Error: {}\n", dot.error().to_string());
    return kExitError;
  }
  if (svg.empty()) {
    fmt::print("{}", *dot);
    return kExitOk;
  }
  auto tmp = os::TempDirectory::create("bpfvm-dot-");
  if (!tmp) {
    fmt::print(stderr, "Error: {}\n", tmp.error().to_string());
    return kExitError;
  }
  const std::string dot_file = tmp->path() + "/cfg.dot";
  if (auto r = os::write_file(dot_file, {reinterpret_cast<const std::uint8_t*>(dot->data()), dot->size()}); !r) {
    fmt::print(stderr, "Error: {}\n", r.error().to_string());
    return kExitError;
  }
  auto rc = os::run_process({"dot", "-Tsvg", dot_file, "-o", svg});
  if (!rc || *rc != 0) {
    fmt::print(stderr, "Error: graphviz's dot could not render {}{}\n", svg,
               rc ? "" : fmt::format(": {}", rc.error().message()));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

int prog_dump(Args& args) {
  const std::string_view what = args.next();
  if (what != "jited" && what != "xlated") throw UsageError{"prog dump takes 'xlated PROG' or 'jited PROG'"};
  const bool jited = what == "jited";
  if (args.empty()) throw UsageError{fmt::format("prog dump {} needs a PROG", what)};
  const ObjectRef ref = parse_prog_ref(args);
  bool opcodes = false, linum = false, visual = false;
  std::string file, svg;
  while (!args.empty()) {
    const std::string_view word = args.next();
    if (word == "opcodes") {
      opcodes = true;
    } else if (word == "linum") {
      linum = true;
    } else if (word == "visual" && !jited) {
      visual = true;
    } else if (word == "--svg") {
      svg = args.value_of("--svg");
    } else if (word == "file") {
      if (args.empty()) throw UsageError{"'file' needs a FILE"};
      file = std::string(args.next());
    } else {
      throw UsageError{fmt::format("unexpected '{}' in prog dump {}", word, what)};
    }
  }
  if (!file.empty() && (opcodes || linum || visual)) {
    throw UsageError{"'file' writes the raw image: no opcodes, linum or visual with it"};
  }
  if (!svg.empty() && !visual) throw UsageError{"--svg renders the 'visual' graph: add 'visual'"};
  runtime::Runtime rt;
  auto ids = resolve_programs(rt, ref);
  if (!ids) {
    fmt::print(stderr, "Error: {}\n", ids.error().to_string());
    return kExitError;
  }
  if (ids->size() > 1 && !file.empty()) {
    fmt::print(stderr, "Error: several programs match '{}': 'file' takes one\n", ref.value);
    return kExitError;
  }
  int rc = kExitOk;
  for (std::uint32_t id : *ids) {
    auto prog = rt.open_program_by_id(id);
    if (!prog) {
      fmt::print(stderr, "Error: {}\n", prog.error().to_string());
      return kExitError;
    }
    const auto running = jited ? running_code(rt, id) : std::nullopt;
    if (const int r = dump_one(**prog, running, jited, file, opcodes, linum, visual, svg); r != kExitOk) rc = r;
  }
  return rc;
}

namespace {

int dump_one(const runtime::Program& program, const std::optional<NativeCode>& running, bool jited,
             const std::string& file, bool opcodes, bool linum, bool visual, const std::string& svg) {
  const runtime::Program* prog = &program;
  if (!jited) {
    if (!file.empty()) {
      if (auto r = os::write_file(file, isa::to_wire(prog->xlated())); !r) {
        fmt::print(stderr, "Error: {}\n", r.error().to_string());
        return kExitError;
      }
      return kExitOk;
    }
    if (visual) return print_visual(*prog, svg);
    print_xlated(*prog, opcodes, linum);
    return kExitOk;
  }
  const vm::JitProgram* jit = prog->jited();
  if (!jit) {
    fmt::print(stderr, "Error: program '{}' runs in the interpreter (BPFVM_JIT=0 when it was loaded): no native code\n",
               prog->name());
    return kExitError;
  }
  const NativeCode native = running ? *running
                                     : NativeCode{{jit->code().begin(), jit->code().end()},
                                                  {jit->insn_offsets().begin(), jit->insn_offsets().end()}};
  if (!file.empty()) {
    if (auto r = os::write_file(file, native.code()); !r) {
      fmt::print(stderr, "Error: {}\n", r.error().to_string());
      return kExitError;
    }
    return kExitOk;
  }
  print_jited(*prog, native, opcodes, linum);
  return kExitOk;
}

}  // namespace

}  // namespace bpfvm::cli
