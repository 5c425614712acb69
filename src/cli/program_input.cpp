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
  if (!syntax) {
    syntax = text.find("%r") != std::string::npos ? isa::AsmSyntax::kConformance : isa::AsmSyntax::kKernel;
  }
  return isa::assemble(text, *syntax, path);
}

}  // namespace bpfvm::cli
