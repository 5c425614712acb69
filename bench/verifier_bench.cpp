// Verification beside the kernel's verifier: for every program of each object, the instructions each
// verifier processed and the time each took (the kernel's own BPF_LOG_STATS "verification time", the
// best of several loads; bpfvm's verify() timed the same way), and the ratio kernel / bpfvm.
//
//   verifier_bench [--runs N] [--no-kernel] OBJ...
//
// The kernel column needs root and bpf(); without them only bpfvm's numbers are printed.
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bpfvm/obj/object_spec.hpp"
#include "bpfvm/runtime/program_verifier.hpp"

namespace {

struct KernelStats {
  long long usec = -1;
  long long insns = -1;
  bool loaded = false;
};

int silent(enum libbpf_print_level, const char*, va_list) { return 0; }

// Loads the whole object into the kernel with BPF_LOG_STATS and reads each program's numbers.
std::map<std::string, KernelStats> kernel_stats(const std::string& path) {
  std::map<std::string, KernelStats> out;
  if (::geteuid() != 0) return out;
  bpf_object* obj = bpf_object__open(path.c_str());
  if (!obj) return out;
  std::map<std::string, std::vector<char>> logs;
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    auto& buf = logs[bpf_program__name(p)];
    buf.assign(1 << 16, 0);
    bpf_program__set_log_buf(p, buf.data(), buf.size());
    bpf_program__set_log_level(p, 4);  // BPF_LOG_STATS
  }
  const bool loaded = bpf_object__load(obj) == 0;
  bpf_object__for_each_program(p, obj) {
    KernelStats k;
    k.loaded = loaded;
    const char* log = logs[bpf_program__name(p)].data();
    if (const char* t = std::strstr(log, "verification time ")) k.usec = std::atoll(t + 18);
    if (const char* t = std::strstr(log, "processed ")) k.insns = std::atoll(t + 10);
    out[bpf_program__name(p)] = k;
  }
  bpf_object__close(obj);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  libbpf_set_print(silent);
  int runs = 5;
  bool kernel_too = true;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::string(argv[i]) == "--no-kernel") {
      kernel_too = false;
    } else {
      files.emplace_back(argv[i]);
    }
  }
  if (files.empty()) {
    fmt::print(stderr, "usage: verifier_bench [--runs N] [--no-kernel] OBJ...\n");
    return 2;
  }
  fmt::print("{:<28} {:<22} {:>9} {:>9} {:>11} {:>11} {:>8}\n", "file", "program", "insns(k)", "insns(v)", "kernel us",
             "bpfvm us", "ratio");
  double log_sum = 0;
  int compared = 0;
  for (const std::string& f : files) {
    auto spec = bpfvm::obj::open_object(f);
    if (!spec) {
      fmt::print(stderr, "{}: {}\n", f, spec.error().to_string());
      continue;
    }
    std::map<std::string, KernelStats> kernel;
    for (int r = 0; r < (kernel_too ? runs : 0); ++r) {
      for (auto& [name, k] : kernel_stats(f)) {
        auto [it, fresh] = kernel.emplace(name, k);
        if (!fresh && k.usec >= 0 && (it->second.usec < 0 || k.usec < it->second.usec)) it->second.usec = k.usec;
      }
    }
    std::map<std::string, bpfvm::runtime::ProgramVerdict> best;
    for (int r = 0; r < runs; ++r) {
      for (auto& v : bpfvm::runtime::verify_object(*spec)) {
        auto [it, fresh] = best.emplace(v.program, v);
        if (!fresh && v.duration < it->second.duration) it->second = v;
      }
    }
    const std::string base = f.substr(f.rfind('/') == std::string::npos ? 0 : f.rfind('/') + 1);
    for (const auto& [name, v] : best) {
      const auto us = std::chrono::duration<double, std::micro>(v.duration).count();
      std::string kinsns = "-", kus = "-", ratio = "-";
      if (auto it = kernel.find(name); it != kernel.end() && it->second.loaded) {
        kinsns = fmt::format("{}", it->second.insns);
        kus = fmt::format("{}", it->second.usec);
        if (it->second.usec > 0 && us > 0) {
          ratio = fmt::format("{:.2f}x", static_cast<double>(it->second.usec) / us);
          log_sum += std::log(static_cast<double>(it->second.usec) / us);
          ++compared;
        }
      } else if (!kernel.empty()) {
        kinsns = "refused";
      }
      fmt::print("{:<28} {:<22} {:>9} {:>9} {:>11} {:>11.0f} {:>8}{}\n", base, name, kinsns,
                 v.stats.insns_processed, kus, us, ratio, v.accepted ? "" : "  (bpfvm refuses)");
    }
  }
  if (compared) {
    fmt::print("geometric mean of kernel time / bpfvm time over {} programs: {:.2f}x\n", compared,
               std::exp(log_sum / compared));
  }
  return 0;
}
