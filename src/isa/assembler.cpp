#include "bpfvm/isa/assembler.hpp"

#include "asm_syntaxes.hpp"

namespace bpfvm::isa {

Result<std::vector<RawInsn>> assemble(std::string_view text, AsmSyntax syntax, std::string_view file) {
  switch (syntax) {
    case AsmSyntax::kKernel: return detail::assemble_kernel(text, file);
    case AsmSyntax::kConformance: return detail::assemble_conformance(text, file);
  }
  return make_error(Errc::kInvalid, "unknown assembler syntax");
}

}  // namespace bpfvm::isa
