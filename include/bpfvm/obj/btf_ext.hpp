// The .BTF.ext section: per code section, which BTF function each subprogram is (func_info) and which
// C source line each instruction came from (line_info). Records use the kernel's layouts
// (struct bpf_func_info, struct bpf_line_info); offsets are converted from bytes to instruction slots.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/obj/btf.hpp"

namespace bpfvm::obj {

struct FuncInfo {
  std::uint32_t insn = 0;  // instruction slot
  std::uint32_t type_id = 0;
};

struct LineInfo {
  std::uint32_t insn = 0;
  std::uint32_t file_name_off = 0;  // into the BTF string section
  std::uint32_t line_off = 0;       // the source text of the line
  std::uint32_t line_col = 0;       // line << 10 | column

  std::uint32_t line() const { return line_col >> 10; }
  std::uint32_t column() const { return line_col & 0x3ff; }
};

// A CO-RE relocation (struct bpf_core_relo): instruction `insn` uses `access` (the string at
// access_str_off: "0:1:2", member and array indexes from local type `type_id`) as `kind` says
// (enum bpf_core_relo_kind: field offset, size, existence..., type id/existence/size, enum values).
struct CoreRelo {
  std::uint32_t insn = 0;
  std::uint32_t type_id = 0;
  std::uint32_t access_str_off = 0;
  std::uint32_t kind = 0;
};

struct BtfExt {
  std::map<std::string, std::vector<FuncInfo>> func_info;  // by section name
  std::map<std::string, std::vector<LineInfo>> line_info;
  std::map<std::string, std::vector<CoreRelo>> core_relos;
  bool has_core_relocations = false;

  // Section names and the strings records point to come from `btf`.
  static Result<BtfExt> parse(std::span<const std::uint8_t> bytes, const Btf& btf);
};

}  // namespace bpfvm::obj
