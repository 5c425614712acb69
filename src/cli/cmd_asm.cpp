// bpfvm asm FILE [--syntax kernel|conformance] -o OUT.bin
#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/codec.hpp"
#include "command.hpp"

namespace bpfvm::cli {

int cmd_asm(Args& args) {
  std::string input, output;
  std::optional<isa::AsmSyntax> syntax;
  while (!args.empty()) {
    std::string_view a = args.next();
    if (a == "--syntax") {
      std::string s = args.value_of(a);
      syntax = parse_syntax(s);
      if (!syntax) throw UsageError{fmt::format("unknown syntax '{}' (kernel or conformance)", s)};
    } else if (a == "-o") {
      output = args.value_of(a);
    } else if (input.empty() && !a.starts_with("-")) {
      input = a;
    } else {
      throw UsageError{fmt::format("unexpected argument '{}'", a)};
    }
  }
  if (input.empty()) throw UsageError{"asm needs an input FILE"};
  if (output.empty()) throw UsageError{"asm needs -o OUT.bin"};
  auto program = read_program(input, syntax);
  if (!program) {
    fmt::print(stderr, "Error: {}\n", program.error().to_string());
    return kExitError;
  }
  if (auto w = os::write_file(output, isa::to_wire(*program)); !w) {
    fmt::print(stderr, "Error: {}\n", w.error().to_string());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace bpfvm::cli
