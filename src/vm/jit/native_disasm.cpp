#include "bpfvm/vm/native_disasm.hpp"

#include <Zydis/Zydis.h>
#include <fmt/format.h>

#include <string_view>

namespace bpfvm::vm {

namespace {

// objdump's look: lowercase hex, no zero padding of displacements and immediates, "a,b" operands.
struct Printer {
  ZydisDecoder decoder;
  ZydisFormatter formatter;
  Printer() {
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_ATT);
    ZydisFormatterSetProperty(&formatter, ZYDIS_FORMATTER_PROP_HEX_UPPERCASE, ZYAN_FALSE);
    ZydisFormatterSetProperty(&formatter, ZYDIS_FORMATTER_PROP_DISP_PADDING, ZYDIS_PADDING_DISABLED);
    ZydisFormatterSetProperty(&formatter, ZYDIS_FORMATTER_PROP_IMM_PADDING, ZYDIS_PADDING_DISABLED);
  }
};

std::string objdump_style(std::string_view text, bool pad = true) {
  std::string out;
  const auto space = text.find(' ');
  const std::string_view mnemonic = text.substr(0, space);
  if (space == std::string_view::npos) return std::string(text);
  // After a prefix ("lock add %eax,(%rdi)") objdump does not pad.
  if (mnemonic == "lock" || mnemonic == "rep") {
    return fmt::format("{} {}", mnemonic, objdump_style(text.substr(space + 1), false));
  }
  out = pad ? fmt::format("{:<6} ", mnemonic) : fmt::format("{} ", mnemonic);
  const std::string_view operands = text.substr(space + 1);
  for (std::size_t i = 0; i < operands.size(); ++i) {
    if (operands[i] == ' ' && i > 0 && operands[i - 1] == ',') continue;
    out += operands[i];
  }
  return out;
}

}  // namespace

std::vector<NativeInsn> disassemble_native(std::span<const std::uint8_t> code) {
  static const Printer printer;
  std::vector<NativeInsn> out;
  std::size_t at = 0;
  while (at < code.size()) {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
    NativeInsn n;
    n.offset = static_cast<std::uint32_t>(at);
    char text[128];
    if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&printer.decoder, code.data() + at, code.size() - at, &insn, operands)) &&
        ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&printer.formatter, &insn, operands, insn.operand_count_visible,
                                                     text, sizeof text, at, nullptr))) {
      n.size = insn.length;
      n.text = objdump_style(text);
    } else {
      n.size = 1;
      n.text = "(bad)";
    }
    out.push_back(std::move(n));
    at += out.back().size;
  }
  return out;
}

}  // namespace bpfvm::vm
