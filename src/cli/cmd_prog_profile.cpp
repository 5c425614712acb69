// bpfvm prog profile PROG [duration DURATION] METRICs: counts what a program does while it runs in the
// process that loaded it (a bpfvm trace in another terminal, say), as bpftool's profile does with
// fentry/fexit programs around the kernel's: it turns on the program's shared profile
// (runtime/program_profile.hpp), waits DURATION seconds (or until Ctrl-C) and prints the runs, their
// time, and the host's counters for the metrics asked: cycles and instructions (a host without
// hardware counters, such as many VMs, has none to give: cycles then come from the time-stamp counter,
// labelled "cycles (TSC)", and instructions print as "<not counted>").
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <thread>

#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"

namespace bpfvm::cli {

namespace {

std::atomic<bool> g_profile_stop{false};

}  // namespace

int prog_profile(Args& args) {
  if (args.empty()) throw UsageError{"prog profile needs a PROG"};
  const ObjectRef ref = parse_prog_ref(args);
  std::optional<std::uint32_t> duration;
  bool cycles = false, instructions = false;
  while (!args.empty()) {
    const std::string_view w = args.next();
    if (w == "duration") {
      const std::string v(args.next());
      char* end = nullptr;
      const unsigned long d = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || d == 0 || d > UINT32_MAX) throw UsageError{fmt::format("can't parse duration '{}'", v)};
      duration = static_cast<std::uint32_t>(d);
    } else if (w == "cycles") {
      cycles = true;
    } else if (w == "instructions") {
      instructions = true;
    } else if (w == "l1d_loads" || w == "llc_misses" || w == "itlb_misses" || w == "dtlb_misses") {
      throw UsageError{fmt::format("metric '{}' is not counted by bpfvm (cycles and instructions are)", w)};
    } else {
      throw UsageError{fmt::format("invalid metric '{}'", w)};
    }
  }
  if (!cycles && !instructions) throw UsageError{"prog profile needs a metric: cycles, instructions"};
  runtime::Runtime rt;
  auto ids = resolve_programs(rt, ref);
  if (!ids) {
    fmt::print(stderr, "Error: {}\n", ids.error().to_string());
    return kExitError;
  }
  if (ids->size() != 1) {
    fmt::print(stderr, "Error: several programs match '{}': profile one (by id)\n", ref.value);
    return kExitError;
  }
  const auto& registry = rt.registry();
  auto profile = registry ? runtime::ProgramProfile::open(fmt::format("{}/profile-{}", registry->directory(), (*ids)[0]))
                          : Result<std::shared_ptr<runtime::ProgramProfile>>(make_error(Errc::kNotFound, "no registry"));
  if (!profile) {
    fmt::print(stderr, "Error: program {} is not running in any process that can be profiled (its loader has exited)\n",
               (*ids)[0]);
    return kExitError;
  }
  runtime::ProgramProfileData& d = (*profile)->data();
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_profile_stop = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const std::uint64_t runs0 = d.runs.load(), ns0 = d.run_ns.load(), cyc0 = d.cycles.load(), ins0 = d.instructions.load();
  d.profilers.fetch_add(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(duration.value_or(0));
  while (!g_profile_stop && (!duration || std::chrono::steady_clock::now() < until)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  d.profilers.fetch_sub(1);
  const std::uint64_t runs = d.runs.load() - runs0, ns = d.run_ns.load() - ns0;
  const std::uint64_t cyc = d.cycles.load() - cyc0, ins = d.instructions.load() - ins0;
  const bool cyc_tsc = d.cycles_from_tsc.load() != 0, ins_missing = d.instructions_missing.load() != 0;
  if (output_format().json) {
    ojson j{{"run_cnt", runs}, {"run_time_ns", ns}};
    if (cycles) {
      j["cycles"] = cyc;
      if (cyc_tsc) j["cycles_source"] = "tsc";
    }
    if (instructions) j["instructions"] = ins_missing ? ojson(nullptr) : ojson(ins);
    print_json(j);
    return kExitOk;
  }
  fmt::print("\n{:>18} {:<20}\n{:>18} {:<20}\n", runs, "run_cnt", ns, "run_time_ns");
  if (cycles) fmt::print("{:>18} {:<20}\n", cyc, cyc_tsc ? "cycles (TSC)" : "cycles");
  if (instructions) {
    std::string line = fmt::format("{:>18} {:<20}", ins_missing ? "<not counted>" : std::to_string(ins), "instructions");
    if (cycles && !cyc_tsc && !ins_missing && cyc) line += fmt::format("# {:8.2f} insns per cycle", double(ins) / double(cyc));
    fmt::print("{}\n", line);
  }
  if ((cycles && cyc_tsc) || (instructions && ins_missing)) {
    fmt::print(stderr, "(the host gives no hardware counters to the process that runs it (perf_event_open "
                       "refused): cycles are the time-stamp counter's, instructions are not counted)\n");
  }
  return kExitOk;
}

}  // namespace bpfvm::cli
