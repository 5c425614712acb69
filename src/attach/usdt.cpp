#include "bpfvm/attach/usdt.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "bpfvm/obj/native_elf.hpp"

namespace bpfvm::attach {

namespace {

// The offset in the kernel's x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h) of the register an
// operand names, in any of its widths (the argument's size says how much of it counts); -1 if none.
int pt_regs_offset(std::string_view reg) {
  struct Reg {
    int offset;
    const char* names[4];
  };
  static constexpr Reg kRegs[] = {
      {0, {"r15", "r15d", "r15w", "r15b"}}, {8, {"r14", "r14d", "r14w", "r14b"}},
      {16, {"r13", "r13d", "r13w", "r13b"}}, {24, {"r12", "r12d", "r12w", "r12b"}},
      {32, {"rbp", "ebp", "bp", "bpl"}},     {40, {"rbx", "ebx", "bx", "bl"}},
      {48, {"r11", "r11d", "r11w", "r11b"}}, {56, {"r10", "r10d", "r10w", "r10b"}},
      {64, {"r9", "r9d", "r9w", "r9b"}},     {72, {"r8", "r8d", "r8w", "r8b"}},
      {80, {"rax", "eax", "ax", "al"}},      {88, {"rcx", "ecx", "cx", "cl"}},
      {96, {"rdx", "edx", "dx", "dl"}},      {104, {"rsi", "esi", "si", "sil"}},
      {112, {"rdi", "edi", "di", "dil"}},    {128, {"rip", "eip", nullptr, nullptr}},
      {152, {"rsp", "esp", "sp", "spl"}},
  };
  for (const Reg& r : kRegs) {
    for (const char* n : r.names) {
      if (n && reg == n) return r.offset;
    }
  }
  return -1;
}

// A signed decimal (or 0x hexadecimal) number that is the whole of `s`.
bool parse_number(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  const std::string text(s);
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(text.c_str(), &end, 0);
  return errno == 0 && end == text.c_str() + text.size();
}

Result<UsdtArg> parse_arg(std::string_view text) {
  UsdtArg a;
  const auto at = text.find('@');
  if (at == std::string_view::npos) {
    return make_error(Errc::kNotSupported, "USDT argument '{}' has no size (SIZE@OPERAND): an sdt.h before version 3",
                      text);
  }
  std::int64_t size = 0;
  if (!parse_number(text.substr(0, at), size) || (std::llabs(size) != 1 && std::llabs(size) != 2 &&
                                                  std::llabs(size) != 4 && std::llabs(size) != 8)) {
    return make_error(Errc::kInvalid, "USDT argument '{}': the size is not 1, 2, 4 or 8 (negative: signed)", text);
  }
  a.is_signed = size < 0;
  a.bitshift = static_cast<std::uint8_t>(64 - std::llabs(size) * 8);
  std::string_view op = text.substr(at + 1);
  std::int64_t value = 0;
  if (op.starts_with('$')) {  // an immediate
    if (!parse_number(op.substr(1), value)) {
      return make_error(Errc::kNotSupported, "USDT argument '{}': the constant is not a number", text);
    }
    a.kind = UsdtArg::Kind::kConst;
    a.val_off = static_cast<std::uint64_t>(value);
    return a;
  }
  if (op.starts_with('%')) {  // a register
    const int off = pt_regs_offset(op.substr(1));
    if (off < 0) return make_error(Errc::kNotSupported, "USDT argument '{}': register '{}' is not a general register", text, op);
    a.kind = UsdtArg::Kind::kReg;
    a.reg_off = static_cast<std::int16_t>(off);
    return a;
  }
  // OFFSET(%REG): memory at a register plus an offset.
  const auto open = op.find('(');
  if (open == std::string_view::npos || !op.ends_with(')')) {
    return make_error(Errc::kNotSupported, "USDT argument '{}': operand '{}' is no register, constant or memory at a register",
                      text, op);
  }
  const std::string_view inner = op.substr(open + 1, op.size() - open - 2);
  if (inner.find(',') != std::string_view::npos) {
    return make_error(Errc::kNotSupported, "USDT argument '{}': an index register ({}), which libbpf's argument spec cannot "
                      "say", text, op);
  }
  if (open != 0 && !parse_number(op.substr(0, open), value)) {
    return make_error(Errc::kNotSupported, "USDT argument '{}': the offset '{}' is not a number (a symbol, as libbpf refuses)",
                      text, op.substr(0, open));
  }
  if (!inner.starts_with('%') || pt_regs_offset(inner.substr(1)) < 0) {
    return make_error(Errc::kNotSupported, "USDT argument '{}': '{}' is not a general register", text, inner);
  }
  if (inner == "%rip" || inner == "%eip") {
    return make_error(Errc::kNotSupported, "USDT argument '{}': memory relative to rip", text);
  }
  a.kind = UsdtArg::Kind::kRegDeref;
  a.reg_off = static_cast<std::int16_t>(pt_regs_offset(inner.substr(1)));
  a.val_off = static_cast<std::uint64_t>(value);
  return a;
}

}  // namespace

bool is_usdt_section(std::string_view section) {
  const std::string_view type = section.substr(0, section.find('/'));
  return type == "usdt" || type == "usdt.s";
}

Result<UsdtSpec> parse_usdt_section(std::string_view section) {
  if (!is_usdt_section(section)) return make_error(Errc::kInvalid, "'{}' is not a usdt section", section);
  UsdtSpec spec;
  const auto slash = section.find('/');
  if (slash == std::string_view::npos) return spec;  // SEC("usdt"): attached by the loader
  const std::string_view rest = section.substr(slash + 1);
  const auto name_colon = rest.rfind(':');
  const auto provider_colon = name_colon == std::string_view::npos || name_colon == 0
                                  ? std::string_view::npos : rest.rfind(':', name_colon - 1);
  if (provider_colon == std::string_view::npos || provider_colon == 0 || name_colon == provider_colon + 1 ||
      name_colon + 1 == rest.size()) {
    return make_error(Errc::kInvalid, "section '{}' needs PATH:PROVIDER:NAME after 'usdt/'", section);
  }
  spec.path = rest.substr(0, provider_colon);
  spec.provider = rest.substr(provider_colon + 1, name_colon - provider_colon - 1);
  spec.name = rest.substr(name_colon + 1);
  return spec;
}

Result<std::vector<UsdtArg>> parse_usdt_args(std::string_view args) {
  std::vector<UsdtArg> out;
  while (!args.empty()) {
    const auto start = args.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    args.remove_prefix(start);
    const auto end = args.find(' ');
    const std::string_view one = args.substr(0, end);
    if (out.size() == kUsdtMaxArgs) {
      return make_error(Errc::kNotSupported, "more than {} USDT arguments ('{}')", kUsdtMaxArgs, one);
    }
    out.push_back(BPFVM_TRY(parse_arg(one)));
    if (end == std::string_view::npos) break;
    args.remove_prefix(end);
  }
  return out;
}

std::vector<std::uint8_t> usdt_spec_value(const std::vector<UsdtArg>& args, std::uint64_t usdt_cookie) {
  // struct __bpf_usdt_arg_spec { __u64 val_off; enum arg_type (4); short reg_off; bool arg_signed;
  // char arg_bitshift; } is 16 bytes; 12 of them, then __u64 usdt_cookie, then short arg_cnt.
  std::vector<std::uint8_t> v(kUsdtSpecSize, 0);
  for (std::size_t i = 0; i < args.size() && i < kUsdtMaxArgs; ++i) {
    std::uint8_t* p = v.data() + i * 16;
    const UsdtArg& a = args[i];
    const auto kind = static_cast<std::uint32_t>(a.kind);
    std::memcpy(p, &a.val_off, 8);
    std::memcpy(p + 8, &kind, 4);
    std::memcpy(p + 12, &a.reg_off, 2);
    p[14] = a.is_signed ? 1 : 0;
    p[15] = a.bitshift;
  }
  std::memcpy(v.data() + kUsdtMaxArgs * 16, &usdt_cookie, 8);
  const auto count = static_cast<std::int16_t>(args.size());
  std::memcpy(v.data() + kUsdtMaxArgs * 16 + 8, &count, 2);
  return v;
}

Result<std::vector<UsdtSite>> resolve_usdt(const UsdtSpec& spec, const std::string& self_exe) {
  if (spec.path.empty()) return make_error(Errc::kInvalid, "the usdt program names no file: the loader attaches it");
  std::string path = spec.path;
  if (path == "/proc/self/exe" && !self_exe.empty()) path = self_exe;
  else path = BPFVM_TRY(resolve_binary_path(path));
  const std::vector<obj::UsdtNote> notes = BPFVM_TRY(obj::usdt_notes(path));
  std::vector<UsdtSite> out;
  for (const obj::UsdtNote& n : notes) {
    if (n.provider != spec.provider || n.name != spec.name) continue;
    UsdtSite site;
    site.point = BPFVM_TRY(uprobe_at_offset(path, n.file_offset, false));
    site.semaphore_offset = n.semaphore_offset;
    site.args = n.args;
    out.push_back(std::move(site));
  }
  if (out.empty()) {
    return make_error(Errc::kNotFound, "'{}' has no USDT probe {}:{} ({} probe{} in its .note.stapsdt)", path,
                      spec.provider, spec.name, notes.size(), notes.size() == 1 ? "" : "s");
  }
  return out;
}

}  // namespace bpfvm::attach
