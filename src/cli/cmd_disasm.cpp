// bpfvm disasm FILE.bin|FILE.o|FILE.s [opcodes]
#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/obj/elf_code.hpp"
#include "command.hpp"

namespace bpfvm::cli {

namespace {
bool is_elf(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}
}  // namespace

int cmd_disasm(Args& args) {
  std::string input;
  isa::DisasmOptions options;
  while (!args.empty()) {
    std::string_view a = args.next();
    if (a == "opcodes") {
      options.opcodes = true;
    } else if (input.empty() && !a.starts_with("-")) {
      input = a;
    } else {
      throw UsageError{fmt::format("unexpected argument '{}'", a)};
    }
  }
  if (input.empty()) throw UsageError{"disasm needs a FILE"};
  auto bytes = os::read_file(input);
  if (!bytes) {
    fmt::print(stderr, "Error: {}\n", bytes.error().to_string());
    return kExitError;
  }
  if (is_elf(*bytes) || input.ends_with(".o")) {
    auto sections = obj::read_elf_code(*bytes);
    if (!sections) {
      fmt::print(stderr, "Error: read '{}': {}\n", input, sections.error().to_string());
      return kExitError;
    }
    bool first = true;
    for (const obj::CodeSection& sec : *sections) {
      std::vector<obj::CodeSymbol> symbols = sec.symbols;
      if (symbols.empty()) symbols.push_back({sec.name, 0, sec.insns.size()});
      for (const obj::CodeSymbol& sym : symbols) {
        if (!first) fmt::print("\n");
        first = false;
        // Instruction numbers restart at each function, as bpftool numbers a loaded program.
        fmt::print("{}: section '{}'\n", sym.name, sec.name);
        std::span<const isa::RawInsn> code(sec.insns.data() + sym.first, sym.count);
        fmt::print("{}", isa::disassemble(code, options));
      }
    }
    return kExitOk;
  }
  auto program = read_program(input, std::nullopt);
  if (!program) {
    fmt::print(stderr, "Error: {}\n", program.error().to_string());
    return kExitError;
  }
  fmt::print("{}", isa::disassemble(*program, options));
  return kExitOk;
}

}  // namespace bpfvm::cli
