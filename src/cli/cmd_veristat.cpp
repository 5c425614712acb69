// bpfvm veristat: verifies every program of each object without running it, and prints what the
// kernel's veristat prints (verdict, verification time, processed instructions, states).
#include <fmt/format.h>

#include <algorithm>

#include "bpfvm/obj/core.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/program_verifier.hpp"
#include "command.hpp"

namespace bpfvm::cli {

namespace {

struct Row {
  std::string file;
  runtime::ProgramVerdict v;
};

std::string table(const std::vector<Row>& rows) {
  const std::vector<std::string> head = {"File", "Program", "Verdict", "Duration (us)", "Insns", "States", "Peak states"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    cells.push_back({r.file, r.v.program, r.v.accepted ? "success" : "failure",
                     fmt::format("{}", std::chrono::duration_cast<std::chrono::microseconds>(r.v.duration).count()),
                     fmt::format("{}", r.v.stats.insns_processed), fmt::format("{}", r.v.stats.states),
                     fmt::format("{}", r.v.stats.peak_states)});
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& row : cells) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& row, bool header) {
    std::string out;
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) out += "  ";
      // Text columns to the left, numbers to the right (as veristat aligns them).
      out += (c < 3 || header) ? fmt::format("{:<{}}", row[c], width[c]) : fmt::format("{:>{}}", row[c], width[c]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string rule;
  for (std::size_t c = 0; c < head.size(); ++c) rule += (c ? "  " : "") + std::string(width[c], '-');
  std::string out = line(head, true) + rule + "\n";
  for (const auto& row : cells) out += line(row, false);
  return out + rule + "\n";
}

}  // namespace

int cmd_veristat(Args& args) {
  std::vector<std::string> files;
  std::string format = "table";
  std::optional<std::uint32_t> type;
  bool verbose = false;
  std::uint32_t level = 0;
  std::optional<std::string> btf_path;
  while (!args.empty()) {
    const std::string_view a = args.next();
    if (a == "-o" || a == "--output-format") {
      format = args.value_of(a);
      if (format != "table" && format != "csv") throw UsageError{fmt::format("unknown output format '{}'", format)};
    } else if (a == "-t" || a == "--type") {
      const std::string name = args.value_of(a);
      type = obj::prog_type_from_name(name);
      if (!type) throw UsageError{fmt::format("unknown program type '{}'", name)};
    } else if (a == "--btf") {
      btf_path = args.value_of(a);  // the target of CO-RE relocations (libbpf's btf_custom_path)
    } else if (a == "-v" || a == "--verbose") {
      verbose = true;
    } else if (a == "-l" || a == "--log-level") {
      const std::string v = args.value_of(a);
      if (v != "1" && v != "2") throw UsageError{fmt::format("log level must be 1 or 2, not '{}'", v)};
      level = static_cast<std::uint32_t>(v[0] - '0');
    } else if (a.starts_with("-")) {
      throw UsageError{fmt::format("unknown option '{}'", a)};
    } else {
      files.emplace_back(a);
    }
  }
  if (files.empty()) throw UsageError{"veristat needs at least one object file"};
  std::vector<Row> rows;
  std::size_t skipped_files = 0;
  for (const std::string& f : files) {
    auto specs = obj::open_objects(f);  // an object file, or a program with objects embedded
    if (!specs) {
      fmt::print(stderr, "{}\n", specs.error().to_string());
      ++skipped_files;
      continue;
    }
    const std::string base = f.substr(f.rfind('/') == std::string::npos ? 0 : f.rfind('/') + 1);
    for (obj::ObjectSpec& spec : *specs) {
      if (auto core = runtime::apply_core(spec, btf_path); !core) {
        fmt::print(stderr, "{}: {}\n", f, core.error().to_string());
        ++skipped_files;
        continue;
      } else if (verbose) {
        for (const obj::CoreOutcome& c : *core) fmt::print("{}: CO-RE at insn {}: {}\n", c.program, c.insn, c.what);
      }
      if (spec.programs.empty()) {
        // An empty table would read as success; an object with nothing to verify is an error.
        fmt::print(stderr, "{}: no programs: the object has no executable section other than .text\n", f);
        ++skipped_files;
        continue;
      }
      for (auto& v : runtime::verify_object(spec, type, level)) rows.push_back({base, std::move(v)});
    }
  }
  if (verbose || level) {
    for (const Row& r : rows) {
      if (level) fmt::print("Processing '{}/{}'...\n{}", r.file, r.v.program, r.v.log);
      if (!r.v.accepted) fmt::print("{}/{}: {}\n", r.file, r.v.program, r.v.explanation);
    }
  }
  if (format == "csv") {
    fmt::print("file_name,prog_name,verdict,duration,total_insns,total_states,peak_states\n");
    for (const Row& r : rows) {
      fmt::print("{},{},{},{},{},{},{}\n", r.file, r.v.program, r.v.accepted ? "success" : "failure",
                 std::chrono::duration_cast<std::chrono::microseconds>(r.v.duration).count(), r.v.stats.insns_processed,
                 r.v.stats.states, r.v.stats.peak_states);
    }
  } else {
    fmt::print("{}", table(rows));
    fmt::print("Done. Processed {} files, {} programs. Skipped {} files, 0 programs.\n", files.size() - skipped_files,
               rows.size(), skipped_files);
  }
  // As veristat: 0 when it ran, whatever the verdicts; 1 when an object could not be read.
  return skipped_files ? kExitError : kExitOk;
}

}  // namespace bpfvm::cli
