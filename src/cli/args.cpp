#include <cstring>

#include "command.hpp"
#include "json_output.hpp"

namespace bpfvm::cli {

int fail(const Error& e) {
  print_error(e.to_string());
  return kExitError;
}

int exit_errno(const Error& e) { return (256 - e.errno_value()) & 0xff; }

int fail_errno(std::string_view what, const Error& e) {
  print_error(fmt::format("{}: {}", what, std::strerror(e.errno_value())));
  return exit_errno(e);
}

int fail_pin(const std::string& file, const Error& e) {
  return fail_errno(fmt::format("can't pin the object ({})", file), e);
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
