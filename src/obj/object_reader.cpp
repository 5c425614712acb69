// read_object: ELF -> ObjectSpec. Programs are the global functions of executable sections other
// than .text (or the whole section, in objects older than that convention); each is linked with the .text (and same-section static) functions it calls or takes the
// address of, appended after it as libbpf does, and map / global data references become LDDW pseudo
// instructions.
#include <bpf/btf.h>
#include <gelf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <optional>
#include <cstring>
#include <map>

#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/opcode.hpp"
#include "bpfvm/obj/object_spec.hpp"
#include "elf_file.hpp"
#include "map_reader.hpp"

namespace bpfvm::obj {

using detail::ElfFile;
using detail::ElfRelocation;
using detail::ElfSection;
using detail::ElfSymbol;
using detail::MapTable;

namespace {

constexpr std::uint8_t kCall = isa::kClassJmp | 0x80;  // BPF_JMP | BPF_CALL

struct Function {
  std::size_t section = 0;
  std::size_t first = 0, count = 0;  // instruction slots in the section
  std::string name;
  bool global = false;
};

struct CodeSection {
  const ElfSection* elf = nullptr;
  std::vector<isa::RawInsn> insns;
  std::vector<Function> functions;  // by position
};

class Linker {
 public:
  Linker(const ElfFile& elf, const MapTable& maps, const std::map<std::size_t, CodeSection>& code,
         const BtfExt* ext)
      : elf_(elf), maps_(maps), code_(code), ext_(ext) {}

  Result<ProgramSpec> link(const Function& entry);

 private:
  struct Placed {
    const Function* fn;
    std::size_t at;  // first slot in the program
  };
  Result<std::size_t> place(const Function& fn);  // appends fn once, returns its position
  Result<const Function*> function_at(std::size_t section, std::int64_t slot, std::string_view why) const;
  Result<void> relocate(const Placed& p, std::size_t i, const ElfRelocation& rel);
  Result<void> retarget_local(const Placed& p, std::size_t i);

  const ElfFile& elf_;
  const MapTable& maps_;
  const std::map<std::size_t, CodeSection>& code_;
  const BtfExt* ext_;
  ProgramSpec prog_;
  std::vector<Placed> placed_;
};

Result<const Function*> Linker::function_at(std::size_t section, std::int64_t slot, std::string_view why) const {
  auto it = code_.find(section);
  if (it != code_.end() && slot >= 0) {
    for (const Function& f : it->second.functions) {
      if (static_cast<std::size_t>(slot) >= f.first && static_cast<std::size_t>(slot) < f.first + f.count) {
        if (static_cast<std::size_t>(slot) != f.first) {
          return make_error(Errc::kInvalid, "{} enters function '{}' in its middle", why, f.name);
        }
        return &f;
      }
    }
  }
  const ElfSection* sec = elf_.section(section);
  return make_error(Errc::kInvalid, "{} targets instruction {} of section '{}', which is not a function", why, slot,
                    sec ? sec->name : "?");
}

Result<std::size_t> Linker::place(const Function& fn) {
  for (const Placed& p : placed_) {
    if (p.fn == &fn) return p.at;
  }
  const std::size_t at = prog_.insns.size();
  const CodeSection& cs = code_.at(fn.section);
  prog_.insns.insert(prog_.insns.end(), cs.insns.begin() + static_cast<std::ptrdiff_t>(fn.first),
                     cs.insns.begin() + static_cast<std::ptrdiff_t>(fn.first + fn.count));
  placed_.push_back({&fn, at});
  if (ext_) {
    const auto copy = [&](const auto& by_section, auto& out) {
      auto it = by_section.find(cs.elf->name);
      if (it == by_section.end()) return;
      for (auto rec : it->second) {
        if (rec.insn < fn.first || rec.insn >= fn.first + fn.count) continue;
        rec.insn = static_cast<std::uint32_t>(rec.insn - fn.first + at);
        out.push_back(rec);
      }
    };
    copy(ext_->func_info, prog_.func_info);
    copy(ext_->line_info, prog_.line_info);
    copy(ext_->core_relos, prog_.core_relos);
  }
  return at;
}

// A call or function address without a relocation: pc-relative within the function's own section.
Result<void> Linker::retarget_local(const Placed& p, std::size_t i) {
  isa::RawInsn& insn = prog_.insns[p.at + i];
  const std::int64_t target = static_cast<std::int64_t>(p.fn->first + i) + 1 + insn.imm;
  if (target >= static_cast<std::int64_t>(p.fn->first) && target < static_cast<std::int64_t>(p.fn->first + p.fn->count)) {
    return {};  // inside the same function: the layout is unchanged
  }
  const Function* callee = BPFVM_TRY(function_at(p.fn->section, target, "a bpf-to-bpf call"));
  const std::size_t at = BPFVM_TRY(place(*callee));
  prog_.insns[p.at + i].imm = static_cast<std::int32_t>(static_cast<std::int64_t>(at) - static_cast<std::int64_t>(p.at + i) - 1);
  return {};
}

Result<void> Linker::relocate(const Placed& p, std::size_t i, const ElfRelocation& rel) {
  const ElfSymbol& sym = elf_.symbols()[rel.symbol];
  isa::RawInsn insn = prog_.insns[p.at + i];
  const auto fail = [&](std::string_view why) {
    return make_error(Errc::kInvalid, "relocation against '{}': {}", sym.name, why).at_insn(p.at + i);
  };
  if (sym.section == SHN_UNDEF) {
    // A __kconfig extern: its address in the .kconfig map, filled for the target before loading.
    if (auto k = maps_.kconfig_by_name.find(sym.name); k != maps_.kconfig_by_name.end() && insn.is_lddw() &&
                                                         i + 1 < p.fn->count) {
      isa::RawInsn& lo = prog_.insns[p.at + i];
      lo.src = BPF_PSEUDO_MAP_VALUE;
      lo.imm = static_cast<std::int32_t>(k->second.first);
      prog_.insns[p.at + i + 1].imm = static_cast<std::int32_t>(k->second.second) + insn.imm;
      prog_.maps_used.push_back(k->second.first);
      return {};
    }
    return make_error(Errc::kNotSupported,
                      "extern '{}' is not defined in the object: a kernel symbol or function (__ksym, kfunc), which "
                      "bpfvm cannot resolve in user space",
                      sym.name)
        .at_insn(p.at + i);
  }
  if (insn.opcode == kCall) {
    if (insn.src != BPF_PSEUDO_CALL) return fail("relocated call is not a bpf-to-bpf call");
    if (!code_.count(sym.section)) return fail("call target is not in a code section");
    // libbpf: target slot = symbol value / 8 + imm + 1.
    const std::int64_t slot = static_cast<std::int64_t>(sym.value / 8) + insn.imm + 1;
    const Function* callee = BPFVM_TRY(function_at(sym.section, slot, "a bpf-to-bpf call"));
    const std::size_t at = BPFVM_TRY(place(*callee));
    prog_.insns[p.at + i].imm = static_cast<std::int32_t>(static_cast<std::int64_t>(at) - static_cast<std::int64_t>(p.at + i) - 1);
    return {};
  }
  if (!insn.is_lddw()) return fail("only 64-bit immediate loads and calls can be relocated");
  if (i + 1 >= p.fn->count) return fail("the 64-bit immediate load is cut off");
  if (code_.count(sym.section)) {
    // The address of a function (a bpf_loop callback): BPF_PSEUDO_FUNC with a pc-relative imm.
    const std::int64_t slot = static_cast<std::int64_t>((sym.value + static_cast<std::uint64_t>(static_cast<std::int64_t>(insn.imm))) / 8);
    const Function* callee = BPFVM_TRY(function_at(sym.section, slot, "a function reference"));
    const std::size_t at = BPFVM_TRY(place(*callee));  // may grow insns: take references after
    isa::RawInsn& lo = prog_.insns[p.at + i];
    isa::RawInsn& hi = prog_.insns[p.at + i + 1];
    lo.src = BPF_PSEUDO_FUNC;
    lo.imm = static_cast<std::int32_t>(static_cast<std::int64_t>(at) - static_cast<std::int64_t>(p.at + i) - 1);
    hi.imm = 0;
    return {};
  }
  isa::RawInsn& lo = prog_.insns[p.at + i];
  isa::RawInsn& hi = prog_.insns[p.at + i + 1];
  if (auto it = maps_.by_symbol.find({sym.section, sym.value}); it != maps_.by_symbol.end()) {
    if (insn.imm != 0) return fail("a map reference with an offset");
    lo.src = BPF_PSEUDO_MAP_FD;
    lo.imm = static_cast<std::int32_t>(it->second);
    hi.imm = 0;
    prog_.maps_used.push_back(it->second);
    return {};
  }
  if (auto it = maps_.by_data_section.find(sym.section); it != maps_.by_data_section.end()) {
    // Global data: section symbols carry the offset in imm; variable symbols add their own value.
    const std::int64_t off = static_cast<std::int64_t>(insn.imm) +
                             (sym.type == STT_SECTION ? 0 : static_cast<std::int64_t>(sym.value));
    const MapSpec& m = maps_.maps[it->second];
    if (off < 0 || off >= m.value_size) return fail(fmt::format("offset {} is outside section '{}'", off, m.symbol));
    lo.src = BPF_PSEUDO_MAP_VALUE;
    lo.imm = static_cast<std::int32_t>(it->second);
    hi.imm = static_cast<std::int32_t>(off);
    prog_.maps_used.push_back(it->second);
    return {};
  }
  const ElfSection* target = elf_.section(sym.section);
  return fail(fmt::format("section '{}' is neither code, a map section nor global data", target ? target->name : "?"));
}

Result<ProgramSpec> Linker::link(const Function& entry) {
  prog_ = {};
  placed_.clear();
  prog_.name = entry.name;
  prog_.section = code_.at(entry.section).elf->name;
  if (auto kind = classify_section(prog_.section)) prog_.kind = *kind;
  BPFVM_TRY(place(entry));
  // Placing a function may place more; walk until every placed function is relocated.
  for (std::size_t k = 0; k < placed_.size(); ++k) {
    const Placed p = placed_[k];
    const auto& rels = elf_.relocations_for(p.fn->section);
    const std::uint64_t lo_byte = p.fn->first * 8, hi_byte = (p.fn->first + p.fn->count) * 8;
    auto rel = std::lower_bound(rels.begin(), rels.end(), lo_byte,
                                [](const ElfRelocation& r, std::uint64_t off) { return r.offset < off; });
    for (std::size_t i = 0; i < p.fn->count; ++i) {
      const std::uint64_t byte = (p.fn->first + i) * 8;
      while (rel != rels.end() && rel->offset < byte) {
        return make_error(Errc::kInvalid, "relocation at offset {} is not on an instruction", rel->offset);
      }
      if (rel != rels.end() && rel->offset == byte && rel->offset < hi_byte) {
        BPFVM_TRY_CTX(relocate(p, i, *rel), "function '{}'", p.fn->name);
        ++rel;
      } else {
        const isa::RawInsn& insn = prog_.insns[p.at + i];
        if (insn.opcode == kCall && insn.src == BPF_PSEUDO_CALL) {
          BPFVM_TRY_CTX(retarget_local(p, i), "function '{}'", p.fn->name);
        } else if (insn.opcode == kCall && insn.src == BPF_PSEUDO_KFUNC_CALL) {
          return make_error(Errc::kNotSupported, "kfunc calls are not supported").at_insn(p.at + i);
        }
      }
      if (prog_.insns[p.at + i].is_lddw()) ++i;  // skip the second slot
    }
  }
  std::sort(prog_.maps_used.begin(), prog_.maps_used.end());
  prog_.maps_used.erase(std::unique(prog_.maps_used.begin(), prog_.maps_used.end()), prog_.maps_used.end());
  return std::move(prog_);
}

Result<std::map<std::size_t, CodeSection>> read_code(const ElfFile& elf) {
  std::map<std::size_t, CodeSection> code;
  for (const ElfSection& s : elf.sections()) {
    if (!s.is_code()) continue;
    auto insns = isa::from_wire(s.bytes);
    if (!insns) return std::move(insns).error().with_context(fmt::format("section '{}'", s.name));
    code[s.index] = CodeSection{&s, std::move(*insns), {}};
  }
  for (const ElfSymbol& sym : elf.symbols()) {
    if (sym.type != STT_FUNC) continue;
    auto it = code.find(sym.section);
    if (it == code.end()) continue;
    CodeSection& cs = it->second;
    if (sym.value % 8 != 0 || sym.value / 8 >= cs.insns.size()) {
      return make_error(Errc::kInvalid, "section '{}': function '{}' at offset {} is not on an instruction", cs.elf->name,
                        sym.name, sym.value);
    }
    const std::size_t first = sym.value / 8;
    std::size_t count = sym.size / 8;
    if (sym.size % 8 != 0 || count == 0 || count > cs.insns.size() - first) {
      return make_error(Errc::kInvalid, "section '{}': function '{}' has size {}", cs.elf->name, sym.name, sym.size);
    }
    cs.functions.push_back({sym.section, first, count, sym.name, sym.bind == STB_GLOBAL || sym.bind == STB_WEAK});
  }
  for (auto& [index, cs] : code) {
    // A program section without a global function comes from an older compiler or loader convention:
    // clang before 2018 gave programs no STT_FUNC symbol, and loaders before libbpf 1.0 (iproute2,
    // samples/bpf, falco's) took a whole section as one program, static or not. Do the same: one
    // program, named by the symbol at the section's start (else the section).
    const bool legacy = cs.elf->name != ".text" && !cs.insns.empty() &&
                        std::none_of(cs.functions.begin(), cs.functions.end(), [](const Function& f) { return f.global; });
    if (legacy) {
      std::string name = cs.elf->name;
      int best = -1;  // a global symbol over a local one, a function over a label
      for (const ElfSymbol& sym : elf.symbols()) {
        if (sym.section != index || sym.value != 0 || sym.name.empty() ||
            (sym.type != STT_FUNC && sym.type != STT_NOTYPE)) {
          continue;
        }
        const int rank = (sym.bind != STB_LOCAL ? 2 : 0) + (sym.type == STT_FUNC ? 1 : 0);
        if (rank > best) best = rank, name = sym.name;
      }
      cs.functions = {Function{index, 0, cs.insns.size(), std::move(name), true}};
      continue;
    }
    std::sort(cs.functions.begin(), cs.functions.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < cs.functions.size(); ++i) {
      const Function& prev = cs.functions[i - 1];
      if (prev.first + prev.count > cs.functions[i].first) {
        return make_error(Errc::kInvalid, "section '{}': functions '{}' and '{}' overlap", cs.elf->name, prev.name,
                          cs.functions[i].name);
      }
    }
  }
  return code;
}

std::string read_license(const ElfFile& elf) {
  const ElfSection* s = elf.find_section("license");
  if (!s) return {};
  const auto* p = reinterpret_cast<const char*>(s->bytes.data());
  return std::string(p, strnlen(p, s->bytes.size()));
}

// tc's loader (iproute2, and cilium before its own) takes the program type from its command line, not
// the section: a section libbpf cannot name is a sched_cls program, as `tc filter add ... bpf obj O sec
// S` loads it. A section named "ID/KEY" is a tail call target: the program goes into slot KEY of the
// program array whose bpf_elf_map id is ID.
void apply_iproute2_conventions(MapTable& maps, std::vector<ProgramSpec>& programs) {
  for (ProgramSpec& p : programs) {
    if (p.kind.prog_type == 0) {
      p.kind.prog_type = BPF_PROG_TYPE_SCHED_CLS;
      p.kind.supported = true;
      p.kind.legacy_name = true;
    }
    const auto slash = p.section.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == p.section.size()) continue;
    std::uint32_t id = 0, key = 0;
    const char* s = p.section.data();
    const auto a = std::from_chars(s, s + slash, id);
    const char* k = s + slash + 1;
    const bool hex = p.section.size() - slash > 3 && k[0] == '0' && (k[1] == 'x' || k[1] == 'X');  // cilium: "1/0x1"
    const auto b = std::from_chars(hex ? k + 2 : k, s + p.section.size(), key, hex ? 16 : 10);
    if (a.ptr != s + slash || a.ec != std::errc{} || b.ptr != s + p.section.size() || b.ec != std::errc{}) continue;
    auto it = maps.by_elf_id.find(id);
    if (it == maps.by_elf_id.end() || maps.maps[it->second].type != BPF_MAP_TYPE_PROG_ARRAY) continue;
    maps.maps[it->second].initial_programs.emplace_back(key, p.name);
  }
}

// libbpf's rule for a subprogram (a function of .text) that is global but hidden (STV_HIDDEN or
// STV_INTERNAL, as `__hidden` makes libbpf's own bpf_usdt_arg): its BTF FUNC is marked static, so that the
// verifier checks it in its callers' context rather than alone with only its BTF types to go by (where
// a pointer argument may be null). The BTF with those functions made static; nothing when there are none.
std::optional<std::vector<std::uint8_t>> hidden_functions_static(const ElfFile& elf, const Btf& btf) {
  const ElfSection* text = elf.find_section(".text");
  if (!text) return std::nullopt;
  const struct btf* b = btf.get();
  // Types are contiguous from the first, which starts the type section (after the header).
  struct btf_header hdr {};
  if (btf.bytes().size() < sizeof hdr || btf__type_cnt(b) < 2) return std::nullopt;
  std::memcpy(&hdr, btf.bytes().data(), sizeof hdr);
  const auto* first = reinterpret_cast<const std::uint8_t*>(btf__type_by_id(b, 1));
  std::optional<std::vector<std::uint8_t>> out;
  for (const ElfSymbol& sym : elf.symbols()) {
    if (sym.type != STT_FUNC || sym.bind == STB_LOCAL || elf.section(sym.section) != text) continue;
    if (sym.visibility != STV_HIDDEN && sym.visibility != STV_INTERNAL) continue;
    const int id = btf__find_by_name_kind(b, sym.name.c_str(), BTF_KIND_FUNC);
    if (id <= 0) continue;
    const struct btf_type* t = btf__type_by_id(b, static_cast<__u32>(id));
    if (btf_vlen(t) != BTF_FUNC_GLOBAL) continue;
    const auto at = (reinterpret_cast<const std::uint8_t*>(t) - first) + static_cast<std::ptrdiff_t>(hdr.hdr_len + hdr.type_off);
    if (at < 0 || static_cast<std::size_t>(at) + sizeof(*t) > btf.bytes().size()) continue;
    if (!out) out.emplace(btf.bytes().begin(), btf.bytes().end());
    const __u32 info = (t->info & ~0xffffu) | BTF_FUNC_STATIC;  // kind and flags kept, vlen = linkage
    std::memcpy(out->data() + at + offsetof(struct btf_type, info), &info, sizeof info);
  }
  return out;
}

// The programs an object's struct_ops variables point to (SEC(".struct_ops") and ".struct_ops.link":
// a struct of the kernel's type whose function pointer members are relocated to programs): each such
// program's attach target is "TYPE:MEMBER", which libbpf turns into attach_btf_id and the member's index
// in the kernel's type (bpf_object__collect_st_ops_relos, then the member matched by name). A local type
// named with a flavor ("tcp_congestion_ops___v2") is the kernel's type without it.
void struct_ops_targets(const ElfFile& elf, const Btf* btf, std::vector<ProgramSpec>& programs) {
  if (!btf) return;
  const struct btf* b = btf->get();
  for (std::size_t si = 1;; ++si) {
    const ElfSection* sec = elf.section(si);
    if (!sec) break;
    if (sec->name != ".struct_ops" && !sec->name.starts_with(".struct_ops.")) continue;
    const int ds = btf__find_by_name_kind(b, sec->name.c_str(), BTF_KIND_DATASEC);
    if (ds <= 0) continue;
    const btf_type* dt = btf__type_by_id(b, static_cast<std::uint32_t>(ds));
    const btf_var_secinfo* vars = btf_var_secinfos(dt);
    for (std::uint16_t v = 0; v < btf_vlen(dt); ++v) {
      const btf_type* var = btf__type_by_id(b, vars[v].type);
      if (!var || !btf_is_var(var)) continue;
      std::uint32_t tid = var->type;
      const btf_type* t = btf__type_by_id(b, tid);
      while (t && (btf_is_mod(t) || btf_is_typedef(t))) t = btf__type_by_id(b, t->type);
      if (!t || !btf_is_struct(t)) continue;
      std::string type = btf__name_by_offset(b, t->name_off) ? btf__name_by_offset(b, t->name_off) : "";
      if (const auto flavor = type.find("___"); flavor != std::string::npos) type.resize(flavor);
      // Where the variable lies: its symbol's (clang leaves the DATASEC's offsets for libbpf to fill).
      const char* vname = btf__name_by_offset(b, var->name_off);
      std::uint64_t start = vars[v].offset, size = vars[v].size;
      for (const ElfSymbol& sym : elf.symbols()) {
        if (vname && sym.name == vname && sym.section == sec->index) {
          start = sym.value;
          size = static_cast<std::uint64_t>(std::max<long long>(btf__resolve_size(b, var->type), 0));
        }
      }
      for (const ElfRelocation& r : elf.relocations_for(sec->index)) {
        if (r.offset < start || r.offset >= start + size) continue;
        const std::uint64_t moff = (r.offset - start) * 8;
        const btf_member* m = btf_members(t);
        const char* member = nullptr;
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
          if (btf_member_bit_offset(t, i) == moff) member = btf__name_by_offset(b, m->name_off);
        }
        if (!member || r.symbol >= elf.symbols().size()) continue;
        const ElfSymbol& sym = elf.symbols()[r.symbol];
        const ElfSection* code = elf.section(sym.section);
        for (ProgramSpec& p : programs) {
          if (p.name == sym.name && code && p.section == code->name && p.kind.prog_type == BPF_PROG_TYPE_STRUCT_OPS) {
            p.kind.attach_target = type + ":" + member;
          }
        }
      }
    }
  }
}

Result<ObjectSpec> read(std::span<const std::uint8_t> file, std::string_view file_name) {
  const ElfFile elf = BPFVM_TRY(ElfFile::parse(file));
  ObjectSpec out;
  out.name = object_name_for(file_name);
  out.license = read_license(elf);
  if (const ElfSection* v = elf.find_section("version")) {
    if (v->bytes.size() != 4) return make_error(Errc::kInvalid, "section 'version' is {} bytes, not 4", v->bytes.size());
    std::memcpy(&out.kern_version, v->bytes.data(), 4);
  }
  std::optional<BtfExt> ext;
  if (const ElfSection* s = elf.find_section(".BTF")) {
    out.btf = BPFVM_TRY_CTX(Btf::parse(s->bytes), "section '.BTF'");
    if (auto fixed = hidden_functions_static(elf, *out.btf)) out.btf = BPFVM_TRY_CTX(Btf::parse(*fixed), "section '.BTF'");
    if (const ElfSection* e = elf.find_section(".BTF.ext")) {
      ext = BPFVM_TRY_CTX(BtfExt::parse(e->bytes, *out.btf), "section '.BTF.ext'");
      out.has_core_relocations = ext->has_core_relocations;
    }
  }
  const Btf* btf = out.btf ? &*out.btf : nullptr;
  MapTable maps;
  BPFVM_TRY(detail::read_legacy_maps(elf, maps));
  BPFVM_TRY(detail::read_btf_maps(elf, btf, maps));
  BPFVM_TRY(detail::read_data_maps(elf, btf, out.name, maps));
  BPFVM_TRY(detail::read_kconfig_externs(btf, out.name, maps, out.kconfig, out.kconfig_map));
  for (KconfigExtern& e : out.kconfig) {
    for (const ElfSymbol& sym : elf.symbols()) {
      if (sym.name == e.name && sym.section == SHN_UNDEF) e.weak = sym.bind == STB_WEAK;
    }
  }

  const auto code = BPFVM_TRY(read_code(elf));
  Linker linker(elf, maps, code, ext ? &*ext : nullptr);
  for (const auto& [index, cs] : code) {
    if (cs.elf->name == ".text") continue;  // subprograms only
    // Static functions of a program section are programs too, as cilium/ebpf loads them (libbpf
    // refuses them); the same function may also be called from another program of the section.
    for (const Function& fn : cs.functions) {
      auto linked = linker.link(fn);
      if (linked) {
        out.programs.push_back(std::move(*linked));
        continue;
      }
      // A program that cannot be linked (an unresolved extern, a bad relocation) does not stop the
      // others: it keeps its error, and verifying or loading it reports that.
      ProgramSpec broken;
      broken.name = fn.name;
      broken.section = cs.elf->name;
      if (auto kind = classify_section(broken.section)) broken.kind = *kind;
      broken.link_error = std::move(linked).error().with_context(fmt::format("section '{}': program '{}'", cs.elf->name, fn.name));
      out.programs.push_back(std::move(broken));
    }
  }
  if (maps.iproute2) apply_iproute2_conventions(maps, out.programs);
  struct_ops_targets(elf, btf, out.programs);
  out.maps = std::move(maps.maps);
  return out;
}

}  // namespace

std::string object_name_for(std::string_view path) {
  if (auto slash = path.rfind('/'); slash != std::string_view::npos) path = path.substr(slash + 1);
  if (auto dot = path.find('.'); dot != std::string_view::npos) path = path.substr(0, dot);
  return std::string(path);
}

Result<ObjectSpec> read_object(std::span<const std::uint8_t> file, std::string_view file_name) {
  auto spec = read(file, file_name);
  if (!spec) return std::move(spec).error().with_context(file_name);
  return spec;
}

Result<ObjectSpec> open_object(const std::string& path) {
  const auto bytes = BPFVM_TRY(os::read_file(path));
  return read_object(bytes, path);
}

std::vector<EmbeddedObject> embedded_objects(std::span<const std::uint8_t> file) {
  std::vector<EmbeddedObject> out;
  static constexpr std::uint8_t kMagic[] = {0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB};
  const auto u16 = [&](std::size_t at) { return static_cast<std::uint16_t>(file[at] | file[at + 1] << 8); };
  const auto u64 = [&](std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, file.data() + at, 8);
    return v;
  };
  for (std::size_t at = 1; at + sizeof(Elf64_Ehdr) <= file.size(); ++at) {
    const auto hit = std::search(file.begin() + static_cast<std::ptrdiff_t>(at), file.end(), std::begin(kMagic), std::end(kMagic));
    if (hit == file.end()) break;
    at = static_cast<std::size_t>(hit - file.begin());
    if (at + sizeof(Elf64_Ehdr) > file.size()) break;
    // e_type, e_machine at 16 and 18; e_shoff at 40; e_ehsize, e_shentsize, e_shnum at 52, 58, 60.
    if (u16(at + 16) != ET_REL || u16(at + 18) != EM_BPF || u16(at + 58) != sizeof(Elf64_Shdr)) continue;
    const std::uint64_t shoff = u64(at + 40), shnum = u16(at + 60);
    const std::uint64_t end = shoff + shnum * sizeof(Elf64_Shdr);
    if (shnum == 0 || shoff < sizeof(Elf64_Ehdr) || end > file.size() - at) continue;
    out.push_back({at, file.subspan(at, static_cast<std::size_t>(end))});
    at += static_cast<std::size_t>(end) - 1;
  }
  return out;
}

Result<std::vector<ObjectSpec>> open_objects(const std::string& path) {
  const auto bytes = BPFVM_TRY(os::read_file(path));
  const bool host_elf = bytes.size() >= sizeof(Elf64_Ehdr) && std::memcmp(bytes.data(), ELFMAG, SELFMAG) == 0 &&
                       (bytes[18] | bytes[19] << 8) != EM_BPF && (bytes[18] | bytes[19] << 8) != EM_NONE;
  if (!host_elf) return std::vector<ObjectSpec>{BPFVM_TRY(read_object(bytes, path))};
  // A program that carries its BPF objects (a libbpf skeleton, as libbpf-tools' are built).
  const auto found = embedded_objects(bytes);
  if (found.empty()) {
    return make_error(Errc::kInvalid, "{}: an ELF file for machine {} that embeds no BPF object", path,
                      bytes[18] | bytes[19] << 8);
  }
  std::vector<ObjectSpec> out;
  const std::string base = object_name_for(path);
  for (std::size_t k = 0; k < found.size(); ++k) {
    // Named as bpftool's skeleton names it ("opensnoop.bpf.o" -> "opensnoop_bpf"), which libbpf uses as
    // the prefix of global data maps ("opensno.rodata").
    const std::string name = found.size() == 1 ? base + "_bpf" : fmt::format("{}_bpf{}", base, k + 1);
    auto spec = read(found[k].bytes, name);
    if (!spec) return std::move(spec).error().with_context(fmt::format("{}: the BPF object at offset {}", path, found[k].offset));
    out.push_back(std::move(*spec));
  }
  return out;
}

const ProgramSpec* ObjectSpec::find_program(std::string_view wanted) const {
  for (const ProgramSpec& p : programs) {
    if (p.name == wanted) return &p;
  }
  return nullptr;
}

const MapSpec* ObjectSpec::find_map(std::string_view wanted) const {
  for (const MapSpec& m : maps) {
    if (m.name == wanted || m.symbol == wanted) return &m;
  }
  return nullptr;
}

}  // namespace bpfvm::obj
