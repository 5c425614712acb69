// corpus_agreement: how often bpfvm's verifier gives a program the running kernel's verdict, over objects
// built by others (object files, directories of them, programs that embed them such as libbpf-tools).
//
//   corpus_agreement [--require PCT] [--list] [--speed] PATH...
//
// Each program bpfvm reads is verified by bpfvm (as `bpfvm veristat`) and loaded alone into the kernel
// with the same program type: through libbpf when libbpf opens the object (so CO-RE, kconfig and its map
// rules apply as they would for the object's authors), else through bpf() directly with the maps made as
// bpfvm reads them (iproute2's and samples/bpf's legacy objects). A program counts as judged by the
// kernel when it loads or the verifier refuses it; a load that fails before the verifier (a map the
// kernel cannot make, a missing attach target) is counted apart. Prints every disagreement and a summary;
// exits 1 when the agreement is below --require or bpfvm accepts a program the kernel refuses. --speed
// also compares the verification times of the programs both accept, each side's the best of three
// (the kernel's BPF_LOG_STATS "verification time", bpfvm's verify()); --list prints them per program.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/base/file.hpp"
#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/obj/object_spec.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/program_verifier.hpp"
#include "kernel_log.hpp"

namespace {

using namespace bpfvm;

struct KernelVerdict {
  bool judged = false;    // loaded, or refused by the verifier
  bool accepted = false;
  std::string message;    // the last line of the verifier's log, or why it was not judged
  std::uint64_t insns = 0, usec = 0;  // from the log's statistics (BPF_LOG_STATS), when asked for
};

// "processed N insns ..." and "verification time N usec" of a BPF_LOG_STATS log.
void read_stats(const std::string& log, KernelVerdict& k) {
  auto number_after = [&](std::string_view key) -> std::uint64_t {
    const auto at = log.rfind(key);
    return at == std::string::npos ? 0 : std::strtoull(log.c_str() + at + key.size(), nullptr, 10);
  };
  k.insns = number_after("processed ");
  k.usec = number_after("verification time ");
}

int silent(enum libbpf_print_level, const char*, va_list) { return 0; }

std::string last_line(const std::string& log) {
  std::string s = log;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  std::string line = s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
  // The kernel ends with "processed N insns ..." after the error: take the line before it.
  if (line.starts_with("processed ") && s.rfind('\n') != std::string::npos) {
    s.resize(s.rfind('\n'));
    line = s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
  }
  return line;
}

// A verdict from a load's errno and log: the verifier speaks through EACCES, E2BIG (too complex) and
// EINVAL with a log; other failures happened before it.
KernelVerdict verdict_of(int err, const std::string& log) {
  if (err == 0) return {true, true, {}};
  // The loader's part, not the verifier's: the kernel wanted BTF this loader could not give it.
  if (log.find("missing btf func_info") != std::string::npos) return {false, false, "the kernel needs the object's BTF"};
  const bool verifier = err == EACCES || err == E2BIG || err == ENOSPC || (err == EINVAL && !log.empty());
  if (verifier) return {true, false, last_line(log)};
  return {false, false, fmt::format("load failed before verification: {}{}", std::strerror(err),
                                    log.empty() ? "" : " (" + last_line(log) + ")")};
}

// Through libbpf: the object opened from its bytes, only `program` loaded, with bpfvm's program type.
std::optional<KernelVerdict> through_libbpf(std::span<const std::uint8_t> bytes, const obj::ObjectSpec& spec,
                                            const obj::ProgramSpec& program, std::uint32_t log_level = 1) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = spec.name.c_str());
  bpf_object* o = bpf_object__open_mem(bytes.data(), bytes.size(), &opts);
  if (!o) return std::nullopt;
  static std::vector<char> log(4 << 20);
  log[0] = 0;
  bool found = false;
  bpf_program* p;
  bpf_object__for_each_program(p, o) {
    const bool it = program.name == bpf_program__name(p);
    bpf_program__set_autoload(p, it);
    if (!it) continue;
    found = true;
    bpf_program__set_type(p, static_cast<bpf_prog_type>(program.kind.prog_type));
    bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(program.kind.expected_attach_type));
    bpf_program__set_log_buf(p, log.data(), log.size());
    bpf_program__set_log_level(p, log_level);
  }
  if (!found) {
    bpf_object__close(o);
    return std::nullopt;
  }
  const int err = bpf_object__load(o);
  bpf_object__close(o);
  const std::string text(log.data(), strnlen(log.data(), log.size()));
  if (err == 0) {
    KernelVerdict k{true, true, {}};
    read_stats(text, k);
    return k;
  }
  // A log means the program reached the kernel's verifier; without one libbpf stopped earlier.
  if (text.empty()) return KernelVerdict{false, false, fmt::format("libbpf: {}", std::strerror(-err))};
  return verdict_of(-err, text);
}

// Through bpf() directly, with the maps as bpfvm reads them (objects libbpf 1.x no longer opens).
KernelVerdict through_bpf(const obj::ObjectSpec& spec, const obj::ProgramSpec& program, std::uint32_t log_level = 1) {
  std::vector<int> fds;
  const auto close_all = [&] {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  };
  const auto create = [&](const obj::MapSpec& m, int inner_fd) {
    LIBBPF_OPTS(bpf_map_create_opts, mo);
    mo.map_flags = m.map_flags;
    mo.inner_map_fd = static_cast<__u32>(inner_fd);
    mo.map_extra = m.map_extra;
    std::uint32_t max = m.max_entries;
    if (m.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && max == 0) max = maps::possible_cpus();
    // An inner template's name ("<inner>") is bpfvm's, not one the kernel takes.
    const char* name = m.name.starts_with('<') ? nullptr : m.name.c_str();
    return bpf_map_create(static_cast<bpf_map_type>(m.type), name, m.key_size, m.value_size, max, &mo);
  };
  for (const obj::MapSpec& m : spec.maps) {
    int inner = -1;
    if (m.inner && (inner = create(*m.inner, -1)) < 0) {
      const int e = errno;
      close_all();
      return {false, false, fmt::format("map '{}': its inner map cannot be made: {}", m.name, std::strerror(e))};
    }
    const int fd = create(m, inner);
    if (inner >= 0) ::close(inner);
    if (fd < 0) {
      const int e = errno;
      close_all();
      return {false, false, fmt::format("map '{}' cannot be made: {}", m.name, std::strerror(e))};
    }
    if (!m.initial_value.empty()) {
      const std::uint32_t zero = 0;
      bpf_map_update_elem(fd, &zero, m.initial_value.data(), BPF_ANY);
    }
    if (m.origin == obj::MapOrigin::kRodata) bpf_map_freeze(fd);
    fds.push_back(fd);
  }
  std::vector<isa::RawInsn> insns = program.insns;
  for (std::size_t i = 0; i < insns.size(); ++i) {
    if (insns[i].is_lddw() && (insns[i].src == BPF_PSEUDO_MAP_FD || insns[i].src == BPF_PSEUDO_MAP_VALUE) &&
        static_cast<std::size_t>(insns[i].imm) < fds.size()) {
      insns[i].imm = fds[static_cast<std::size_t>(insns[i].imm)];
    }
  }
  static std::vector<char> log(4 << 20);
  log[0] = 0;
  LIBBPF_OPTS(bpf_prog_load_opts, po);
  // The object's BTF with the program's function and line records, when the kernel takes the BTF as
  // it is (libbpf would first fix up its data sections); global functions and callbacks need them.
  int btf_fd = -1;
  if (spec.btf && !program.func_info.empty()) {
    const auto b = spec.btf->bytes();
    btf_fd = bpf_btf_load(b.data(), b.size(), nullptr);
    if (btf_fd >= 0) {
      fds.push_back(btf_fd);
      po.prog_btf_fd = static_cast<__u32>(btf_fd);
      po.func_info = program.func_info.data();
      po.func_info_cnt = static_cast<__u32>(program.func_info.size());
      po.func_info_rec_size = sizeof(obj::FuncInfo);
      po.line_info = program.line_info.empty() ? nullptr : program.line_info.data();
      po.line_info_cnt = static_cast<__u32>(program.line_info.size());
      po.line_info_rec_size = sizeof(obj::LineInfo);
    }
  }
  po.expected_attach_type = static_cast<bpf_attach_type>(program.kind.expected_attach_type);
  po.prog_flags = program.kind.sleepable ? BPF_F_SLEEPABLE : 0u;
  po.kern_version = spec.kern_version;
  po.log_level = log_level;
  po.log_size = static_cast<__u32>(log.size());
  po.log_buf = log.data();
  const std::vector<std::uint8_t> wire = isa::to_wire(insns);
  const int fd = bpf_prog_load(static_cast<bpf_prog_type>(program.kind.prog_type), nullptr,
                               spec.license.empty() ? "" : spec.license.c_str(),
                               reinterpret_cast<const bpf_insn*>(wire.data()), insns.size(), &po);
  const int e = fd < 0 ? errno : 0;
  if (fd >= 0) ::close(fd);
  close_all();
  const std::string text(log.data(), strnlen(log.data(), log.size()));
  KernelVerdict k = verdict_of(e, text);
  if (k.accepted) read_stats(text, k);
  return k;
}

// --speed: each side's time is the best of this many verifications of the program.
constexpr int kRuns = 3;

struct Totals {
  int programs = 0, no_type = 0, unlinked = 0, kernel_judged = 0, agree = 0, unsafe = 0, too_strict = 0,
      not_judged = 0, core = 0;
  // --speed: per program both accept, bpfvm's verification time over the kernel's.
  std::vector<std::pair<double, std::string>> time_ratios;
};

// The kernel's statistics for a program it accepts: loaded again with BPF_LOG_STATS alone (a
// level-1 log of a big program would be mostly the trace).
KernelVerdict kernel_stats(std::span<const std::uint8_t> bytes, const obj::ObjectSpec& spec,
                           const obj::ProgramSpec& p) {
  constexpr std::uint32_t kStats = 4;  // BPF_LOG_STATS
  KernelVerdict best;
  for (int run = 0; run < kRuns; ++run) {
    KernelVerdict k;
    if (auto via_libbpf = through_libbpf(bytes, spec, p, kStats)) {
      k = *via_libbpf;
    } else {
      k = through_bpf(spec, p, kStats);
    }
    if (run == 0 || (k.usec > 0 && (best.usec <= 0 || k.usec < best.usec))) best = k;
  }
  return best;
}

void judge(const std::string& where, std::span<const std::uint8_t> bytes, const obj::ObjectSpec& spec, bool list,
           bool speed, Totals& t) {
  // bpfvm verifies the code as it would load it: CO-RE relocated against the running kernel.
  obj::ObjectSpec relocated = spec;
  if (auto core = runtime::apply_core(relocated, std::nullopt); !core && list) {
    fmt::print("{}: CO-RE: {}\n", where, core.error().to_string());
  }
  // Times as the best of kRuns in a row, on both sides (the kernel's below).
  const auto verdicts = runtime::verify_object(relocated, std::nullopt, 0, speed ? kRuns : 1);
  for (std::size_t i = 0; i < spec.programs.size(); ++i) {
    const obj::ProgramSpec& p = spec.programs[i];
    const runtime::ProgramVerdict& v = verdicts[i];
    ++t.programs;
    if (p.link_error) {
      ++t.unlinked;
      if (list) fmt::print("{}/{}: not linked: {}\n", where, p.name, p.link_error->to_string());
      continue;
    }
    if (p.kind.prog_type == 0) {
      ++t.no_type;
      if (list) fmt::print("{}/{}: section '{}' names no program type\n", where, p.name, p.section);
      continue;
    }
    KernelVerdict k;
    if (auto via_libbpf = through_libbpf(bytes, spec, p)) {
      k = *via_libbpf;
    } else {
      k = through_bpf(spec, p);
    }
    if (const auto id = test::helper_withheld(k.message); k.judged && !k.accepted && id && helpers::allowed(p.kind.prog_type, *id)) {
      // Refused only because this kernel's build withholds a helper upstream offers the type.
      k = {false, false, fmt::format("this kernel's build withholds helper #{} from the program type (upstream offers "
                                     "it): {}", *id, k.message)};
    }
    if (!k.judged) {
      ++t.not_judged;
      if (list) fmt::print("{}/{}: not judged by the kernel: {}\n", where, p.name, k.message);
      continue;
    }
    if (k.message.find("CO-RE relocation") != std::string::npos) {
      // libbpf could not relocate the program for this kernel (it poisons the instruction, the kernel
      // then refuses it): a CO-RE verdict, which bpfvm's reader does not reach yet.
      ++t.core;
      if (list) fmt::print("{}/{}: CO-RE: {}\n", where, p.name, k.message);
      continue;
    }
    ++t.kernel_judged;
    if (k.accepted == v.accepted) {
      ++t.agree;
      if (speed && k.accepted) {
        const KernelVerdict s = kernel_stats(bytes, spec, p);
        const double us = static_cast<double>(v.duration.count()) / 1000.0;
        if (s.usec > 0) {
          t.time_ratios.emplace_back(us / static_cast<double>(s.usec), where + "/" + p.name);
          if (list) {
            fmt::print("{}/{}: kernel {} insns {} us, bpfvm {} insns {:.0f} us\n", where, p.name, s.insns, s.usec,
                       v.stats.insns_processed, us);
          }
        }
      }
      continue;
    }
    (v.accepted ? t.unsafe : t.too_strict) += 1;
    fmt::print("{}/{} ({}): kernel {}{}; bpfvm {}{}\n", where, p.name, obj::prog_type_name(p.kind.prog_type),
               k.accepted ? "accepts" : "refuses", k.accepted ? "" : ": " + k.message, v.accepted ? "accepts" : "refuses",
               v.accepted ? "" : ": " + v.message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double require = -1;
  bool list = false, speed = false;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--require" && i + 1 < argc) {
      require = std::stod(argv[++i]);
    } else if (a == "--list") {
      list = true;
    } else if (a == "--speed") {
      speed = true;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) {
    fmt::print(stderr, "usage: corpus_agreement [--require PCT] [--list] [--speed] PATH...\n");
    return 2;
  }
  if (::geteuid() != 0) {
    fmt::print("skipped: the kernel's verdicts need root (bpf())\n");
    return 77;
  }
  libbpf_set_print(silent);
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file() && e.path().extension() == ".o") files.push_back(e.path().string());
      }
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  Totals t;
  int unreadable = 0;
  for (const std::string& f : files) {
    auto bytes = os::read_file(f);
    if (!bytes) {
      ++unreadable;
      continue;
    }
    const auto embedded = obj::embedded_objects(*bytes);
    auto specs = obj::open_objects(f);
    if (!specs) {
      ++unreadable;
      if (list) fmt::print("{}: {}\n", f, specs.error().to_string());
      continue;
    }
    for (std::size_t k = 0; k < specs->size(); ++k) {
      // A file that is an object is its own bytes; a host program's k-th object is the k-th embedded one.
      const std::span<const std::uint8_t> object_bytes =
          embedded.size() == specs->size() ? embedded[k].bytes : std::span<const std::uint8_t>(*bytes);
      judge(std::filesystem::path(f).filename().string(), object_bytes, (*specs)[k], list, speed, t);
    }
  }
  const double pct = t.kernel_judged ? 100.0 * t.agree / t.kernel_judged : 0;
  fmt::print("{} files ({} unreadable by bpfvm), {} programs: {} judged by both, {} not judged by the kernel "
             "(load failed before its verifier), {} refused by libbpf's CO-RE, {} without a program type, {} not "
             "linkable\n",
             files.size(), unreadable, t.programs, t.kernel_judged, t.not_judged, t.core, t.no_type, t.unlinked);
  fmt::print("verdict agreement with the kernel: {} of {} ({:.1f}%); bpfvm accepts {} the kernel refuses, refuses {} "
             "the kernel accepts\n",
             t.agree, t.kernel_judged, pct, t.unsafe, t.too_strict);
  if (speed && !t.time_ratios.empty()) {
    auto& r = t.time_ratios;
    std::sort(r.begin(), r.end());
    const auto faster = std::count_if(r.begin(), r.end(), [](const auto& x) { return x.first < 1.0; });
    fmt::print("verification time, bpfvm / kernel, on the {} programs both accept: faster on {}, median {:.2f}x, "
               "slowest {:.2f}x ({})\n",
               r.size(), faster, r[r.size() / 2].first, r.back().first, r.back().second);
  }
  if (t.unsafe > 0 || (require >= 0 && pct < require)) return 1;
  return 0;
}
