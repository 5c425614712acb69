// Private to src/cli: bpftool's -j / -p output. -j prints compact JSON; -p (and the plain output of
// BTF-formatted map dumps) prints it the way bpftool's JSON writer lays it out: a name on its own line,
// indented four spaces per level, scalars of an array on one line and the closing bracket on the next.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace bpfvm::cli {

using ojson = nlohmann::ordered_json;

struct OutputFormat {
  bool json = false;    // -j, --json
  bool pretty = false;  // -p, --pretty (implies -j)
};
OutputFormat& output_format();

// `j` as bpftool writes it (pretty or compact), without a trailing newline.
std::string bpftool_json(const ojson& j, bool pretty);
// Prints `j` in the format -j / -p asked for, with bpftool's trailing newline.
void print_json(const ojson& j);
// bpftool's p_err: "Error: MESSAGE" on stderr, or {"error": "MESSAGE"} on stdout under -j / -p.
void print_error(std::string_view message);

}  // namespace bpfvm::cli
