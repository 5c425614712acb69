// The real-world corpus (tests/corpus: programs in the manner of katran, cilium, falco, suricata, Open
// vSwitch and the kernel's samples) and every test program: bpfvm's verifier gives each program the
// verdict the kernel's gives it (as root, each program loaded alone through libbpf), and accepts
// every program of the corpus.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/program_verifier.hpp"
#include "kernel_log.hpp"

namespace bpfvm::runtime {
namespace {

int silent(enum libbpf_print_level, const char*, va_list) { return 0; }

// Whether the kernel loads the whole object (every program accepted), or nullopt without bpf().
std::optional<bool> kernel_loads(const std::string& path) {
  if (::geteuid() != 0) return std::nullopt;
  libbpf_set_print(silent);
  bpf_object* obj = bpf_object__open(path.c_str());
  if (!obj) return std::nullopt;
  const int err = bpf_object__load(obj);
  bpf_object__close(obj);
  if (err == -EPERM || err == -ENOSYS) return std::nullopt;
  return err == 0;
}

// The kernel's verdict for one program of the object loaded alone, or nullopt without bpf(), when the
// object itself cannot be opened or its maps made, or when the kernel refuses it only because its build
// withholds a helper that upstream offers the program's type (kernel_log.hpp; `withheld` says so).
std::optional<bool> kernel_accepts(const std::string& path, const std::string& program, std::uint32_t prog_type,
                                   std::string& withheld) {
  if (::geteuid() != 0) return std::nullopt;
  libbpf_set_print(silent);
  bpf_object* obj = bpf_object__open(path.c_str());
  if (!obj) return std::nullopt;
  bpf_program* p;
  bool found = false;
  std::vector<char> log(1 << 20);
  bpf_object__for_each_program(p, obj) {
    const bool it = program == bpf_program__name(p);
    found |= it;
    bpf_program__set_autoload(p, it);
    if (it) {
      bpf_program__set_log_buf(p, log.data(), log.size());
      bpf_program__set_log_level(p, 1);
    }
  }
  const int err = found ? bpf_object__load(obj) : -ENOENT;
  bpf_object__close(obj);
  if (!found || err == -EPERM || err == -ENOSYS) return std::nullopt;
  if (const auto id = test::helper_withheld(log.data()); err != 0 && id && helpers::allowed(prog_type, *id)) {
    withheld = fmt::format("helper #{}", *id);
    return std::nullopt;
  }
  return err == 0;
}

TEST(Corpus, EveryProgramGetsTheKernelsVerdict) {
  int programs = 0, compared = 0, corpus = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_PROGS_DIR)) {
    const std::string path = entry.path().string();
    if (!path.ends_with(".bpf.o") || path.find(".clang") != std::string::npos) continue;
    const std::string file = entry.path().filename().string();
    const bool real_world = file.find("_like.bpf.o") != std::string::npos;
    auto spec = obj::open_object(path);
    ASSERT_TRUE(spec) << spec.error().to_string();
    // Verified as loaded: CO-RE relocated against the running kernel, as libbpf does for the kernel.
    if (spec->has_core_relocations && std::filesystem::exists("/sys/kernel/btf/vmlinux")) {
      ASSERT_TRUE(apply_core(*spec, std::nullopt));
    }
    // Programs that fill each other's program array slots load together; alone, libbpf cannot fill
    // the slots of the others. When the whole object loads, every program is accepted.
    const auto whole = kernel_loads(path);
    for (const ProgramVerdict& v : verify_object(*spec)) {
      if (v.prog_type == 0) continue;  // not a type bpfvm runs (fentry)
      SCOPED_TRACE(file + "/" + v.program);
      ++programs;
      if (real_world) {
        ++corpus;
        EXPECT_TRUE(v.accepted) << v.explanation;
      }
      std::string withheld;
      const auto kernel = whole && *whole ? whole : kernel_accepts(path, v.program, v.prog_type, withheld);
      if (!withheld.empty()) {
        std::printf("%s/%s: not judged: this kernel's build withholds %s from its type (upstream offers it)\n",
                    file.c_str(), v.program.c_str(), withheld.c_str());
      }
      if (kernel) {
        ++compared;
        EXPECT_EQ(*kernel, v.accepted) << "the kernel " << (*kernel ? "accepts" : "refuses") << " it; bpfvm:\n"
                                       << v.explanation;
      }
    }
  }
  EXPECT_GE(corpus, 12);
  std::printf("%d programs (%d of the real-world corpus), %d judged by the kernel too\n", programs, corpus, compared);
}

}  // namespace
}  // namespace bpfvm::runtime
