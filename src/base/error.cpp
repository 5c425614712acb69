#include "bpfvm/base/error.hpp"

namespace bpfvm {

std::string Location::to_string() const {
  std::string out;
  if (!file.empty()) {
    out += file;
    if (line) {
      out += fmt::format(":{}", *line);
      if (column) out += fmt::format(":{}", *column);
    }
  } else if (line) {
    out += fmt::format("line {}", *line);
    if (column) out += fmt::format(", column {}", *column);
  }
  if (!section.empty()) {
    if (!out.empty()) out += ": ";
    out += fmt::format("section '{}'", section);
  }
  if (insn) {
    if (!out.empty()) out += ": ";
    out += fmt::format("instruction {}", *insn);
  }
  return out;
}

Error& Error::with_context(std::string_view outer) & {
  if (d_->context.empty()) {
    d_->context = std::string(outer);
  } else {
    d_->context = fmt::format("{}: {}", outer, d_->context);
  }
  return *this;
}

Error&& Error::with_context(std::string_view outer) && {
  with_context(outer);
  return std::move(*this);
}

std::string Error::to_string() const {
  std::string out = d_->context;
  const std::string where = d_->location.to_string();
  if (!where.empty()) {
    if (!out.empty()) out += ": ";
    out += where;
  }
  if (!out.empty()) out += ": ";
  out += d_->message;
  return out;
}

}  // namespace bpfvm
