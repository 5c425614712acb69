#include "json_output.hpp"

#include <fmt/format.h>

namespace bpfvm::cli {

namespace {

// The layout of bpftool's json_writer, reproduced from its observable output: every value is preceded
// by a ',' unless it is the first of its container; a member name starts a new line; a container that
// held anything closes on a new line.
class Writer {
 public:
  explicit Writer(bool pretty) : pretty_(pretty) {}

  void value(const ojson& j) {
    if (j.is_object()) {
      begin('{');
      for (const auto& [k, v] : j.items()) {
        separator();
        newline();
        out_ += ojson(k).dump();
        out_ += pretty_ ? ": " : ":";
        first_ = true;  // the value follows the name with no separator
        value(v);
      }
      end('}');
    } else if (j.is_array()) {
      begin('[');
      for (const auto& v : j) value(v);
      end(']');
    } else {
      separator();
      out_ += j.dump();
    }
  }
  std::string take() { return std::move(out_); }

 private:
  void separator() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  void newline() {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(4 * depth_), ' ');
  }
  void begin(char c) {
    separator();
    out_ += c;
    ++depth_;
    first_ = true;
  }
  void end(char c) {
    --depth_;
    if (!first_) newline();
    out_ += c;
    first_ = false;
  }

  bool pretty_;
  int depth_ = 0;
  bool first_ = true;
  std::string out_;
};

}  // namespace

OutputFormat& output_format() {
  static OutputFormat format;
  return format;
}

std::string bpftool_json(const ojson& j, bool pretty) {
  Writer w(pretty);
  w.value(j);
  return w.take();
}

void print_json(const ojson& j) { fmt::print("{}\n", bpftool_json(j, output_format().pretty)); }

void print_error(std::string_view message) {
  if (output_format().json) {
    ojson j;
    j["error"] = message;
    print_json(j);
  } else {
    fmt::print(stderr, "Error: {}\n", message);
  }
}

}  // namespace bpfvm::cli
