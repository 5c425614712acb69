// USDT probes (SystemTap SDT notes), as libbpf names and attaches them.
//
//   SEC("usdt/PATH:PROVIDER:NAME")   every site of probe PROVIDER:NAME in the file PATH
//   SEC("usdt")                       attached by the loader (bpf_program__attach_usdt)
//
// A site is a uprobe at the note's nop. The program reads its arguments with libbpf's bpf_usdt_arg()
// (bpf/usdt.bpf.h), which finds the site's argument spec in the program's `__bpf_usdt_specs` array
// map by the attach cookie: the loader parses each site's argument string (GNU as operands: `-4@%eax`,
// `8@-16(%rbp)`, `4@$5`) into libbpf's `struct __bpf_usdt_spec`, stores it at a spec id, and attaches
// the site with that id as its cookie, as libbpf does where the kernel has BPF cookies. A probe with a
// semaphore has it counted up in each process while a link is applied there (the kernel's uprobe
// ref_ctr_offset), so that code guarded by `PROVIDER_NAME_ENABLED()` runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/attach/uprobe.hpp"
#include "bpfvm/base/result.hpp"

namespace bpfvm::attach {

struct UsdtSpec {
  std::string path;  // "" for SEC("usdt"), attached by the loader
  std::string provider, name;
};

bool is_usdt_section(std::string_view section);
Result<UsdtSpec> parse_usdt_section(std::string_view section);

// One argument's location, as libbpf's struct __bpf_usdt_arg_spec says it.
struct UsdtArg {
  enum class Kind : std::uint32_t { kConst = 0, kReg = 1, kRegDeref = 2 };  // enum __bpf_usdt_arg_type
  Kind kind = Kind::kConst;
  std::uint64_t val_off = 0;  // the constant, or the offset added to the register's value before the read
  std::int16_t reg_off = 0;   // offsetof(struct pt_regs, reg)
  bool is_signed = false;
  std::uint8_t bitshift = 0;  // 64 - size * 8: the bits above the argument's size cleared (or sign-extended)
};
// The arguments of a note's string (x86-64); the error names the operand bpfvm cannot read, as libbpf
// refuses it (rip-relative symbols, an index register).
Result<std::vector<UsdtArg>> parse_usdt_args(std::string_view args);

// libbpf's struct __bpf_usdt_spec (libbpf 1.0-1.2 layout: 12 argument specs, the user's cookie, the
// argument count): the bytes of one value of the `__bpf_usdt_specs` map.
constexpr std::size_t kUsdtSpecSize = 208;
constexpr std::size_t kUsdtMaxArgs = 12;
std::vector<std::uint8_t> usdt_spec_value(const std::vector<UsdtArg>& args, std::uint64_t usdt_cookie);

struct UsdtSite {
  UprobePoint point;                  // the nop, and the function holding it
  std::uint64_t semaphore_offset = 0; // the kernel's ref_ctr_offset (0: no semaphore)
  std::string args;                   // the note's argument string
};
// Every site of `spec` (`self_exe` as for uprobes); an error when the file has none.
Result<std::vector<UsdtSite>> resolve_usdt(const UsdtSpec& spec, const std::string& self_exe = "");

}  // namespace bpfvm::attach
