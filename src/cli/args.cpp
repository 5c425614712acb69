#include "command.hpp"

namespace bpfvm::cli {

int fail(const Error& e) {
  fmt::print(stderr, "Error: {}\n", e.to_string());
  return kExitError;
}

std::string Args::value_of(std::string_view option) {
  if (empty() || peek().starts_with("--")) throw UsageError{fmt::format("option '{}' needs a value", option)};
  return std::string(next());
}

std::optional<isa::AsmSyntax> parse_syntax(std::string_view name) {
  if (name == "kernel" || name == "bpftool") return isa::AsmSyntax::kKernel;
  if (name == "conformance") return isa::AsmSyntax::kConformance;
  return std::nullopt;
}

}  // namespace bpfvm::cli
