#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/codec.hpp"
#include "command.hpp"

namespace bpfvm::cli {

Result<std::vector<isa::RawInsn>> read_program(const std::string& path, std::optional<isa::AsmSyntax> syntax) {
  if (path.ends_with(".bin")) {
    auto bytes = BPFVM_TRY(os::read_file(path));
    return BPFVM_TRY_CTX(isa::from_wire(bytes), "read '{}'", path);
  }
  std::string text = BPFVM_TRY(os::read_text_file(path));
  if (syntax) return isa::assemble(text, *syntax, path);
  // No syntax given: the text is in whichever one assembles it. When neither does, the error of the
  // one that got further into the file is the useful one.
  auto conformance = isa::assemble(text, isa::AsmSyntax::kConformance, path);
  if (conformance) return conformance;
  auto kernel = isa::assemble(text, isa::AsmSyntax::kKernel, path);
  if (kernel) return kernel;
  const auto line_of = [](const Error& e) { return e.location().line.value_or(0); };
  return line_of(conformance.error()) >= line_of(kernel.error()) ? std::move(conformance).error()
                                                                 : std::move(kernel).error();
}

}  // namespace bpfvm::cli
