// The kernel as an oracle for the disassembler: programs are loaded into the running kernel with bpf(),
// and `bpftool prog dump xlated` of what the kernel holds is compared, line by line, with bpfvm's
// disassembly of the same instructions (fetched with BPF_OBJ_GET_INFO_BY_FD). Needs root, bpftool and
// bpffs; skips cleanly otherwise.
//
// Helper calls are compared by kind only: in a loaded program the kernel has replaced each helper id
// with an address offset, which bpftool resolves through kallsyms. Debian's bpftool 7.1 predates the
// cpu v4 instructions, so the corpus sticks to v1-v3 (v4 formats are covered by the golden tests).
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/disasm.hpp"

namespace bpfvm::isa {
namespace {

long sys_bpf(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  return out;
}

// Prints map references the way bpftool does for loaded programs: the kernel's xlated image carries
// map ids where the program had fds.
struct MapIds : SymbolResolver {
  std::optional<std::string> imm64(const LoadImm64& l, std::size_t) const override {
    if (l.pseudo == Pseudo::kMapFd) return fmt::format("map[id:{}]", l.imm_lo);
    if (l.pseudo == Pseudo::kMapValue) return fmt::format("map[id:{}][0]+{}", l.imm_lo, l.imm_hi);
    return std::nullopt;
  }
};

std::vector<std::string> normalized_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  bool after_local_call = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ';') continue;
    // The bytes of a local call differ by construction (see the restore above): skip them.
    const bool bytes_line = line.rfind("       ", 0) == 0;
    if (bytes_line && after_local_call) continue;
    if (!bytes_line) after_local_call = line.find("call pc") != std::string::npos;
    // "call NAME#N" -> "call HELPER"; "call pc+2#bpf_prog_<tag>_F" -> "call pc+2".
    if (auto at = line.find("call "); at != std::string::npos) {
      const std::size_t hash = line.find('#', at);
      if (hash != std::string::npos) {
        std::size_t end = line.find_first_of(" \n", hash);
        if (end == std::string::npos) end = line.size();
        if (line.compare(at + 5, 2, "pc") == 0) {
          line.erase(hash, end - hash);
        } else {
          line.replace(at + 5, end - (at + 5), "HELPER");
        }
      }
    }
    out.push_back(line);
  }
  return out;
}

class KernelOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
    // Debian installs bpftool in /usr/sbin, which a non-login PATH (CI's, cron's) may lack: a skip there
    // once hid that this test failed on a machine where it did run.
    if (run("PATH=\"$PATH:/usr/sbin:/sbin\"; command -v bpftool").empty()) GTEST_SKIP() << "bpftool is not installed";
    if (run("mount | grep -c ' /sys/fs/bpf type bpf'").rfind("0", 0) == 0) {
      run("mount -t bpf bpf /sys/fs/bpf 2>/dev/null");
      if (run("mount | grep -c ' /sys/fs/bpf type bpf'").rfind("0", 0) == 0) GTEST_SKIP() << "no bpffs";
    }
    union bpf_attr attr {};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 16;
    attr.max_entries = 1;
    map_fd_ = static_cast<int>(sys_bpf(BPF_MAP_CREATE, &attr));
    if (map_fd_ < 0) GTEST_SKIP() << "the kernel refused BPF_MAP_CREATE: " << std::strerror(errno);
  }
  void TearDown() override {
    if (map_fd_ >= 0) close(map_fd_);
  }

  void compare(const std::string& name, std::string text) {
    for (std::size_t at; (at = text.find("MAPFD")) != std::string::npos;) text.replace(at, 5, std::to_string(map_fd_));
    auto program = assemble(text, AsmSyntax::kKernel, name);
    ASSERT_TRUE(program) << program.error().to_string();
    std::vector<char> log(1 << 20);
    union bpf_attr attr {};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insn_cnt = static_cast<std::uint32_t>(program->size());
    attr.license = reinterpret_cast<std::uint64_t>("GPL");
    attr.log_buf = reinterpret_cast<std::uint64_t>(log.data());
    attr.log_size = static_cast<std::uint32_t>(log.size());
    attr.log_level = 1;
    std::vector<struct bpf_insn> wire(program->size());
    for (std::size_t i = 0; i < program->size(); ++i) {
      const RawInsn& r = (*program)[i];
      wire[i].code = r.opcode;
      wire[i].dst_reg = r.dst & 0xf;
      wire[i].src_reg = r.src & 0xf;
      wire[i].off = r.off;
      wire[i].imm = r.imm;
    }
    attr.insns = reinterpret_cast<std::uint64_t>(wire.data());
    int fd = static_cast<int>(sys_bpf(BPF_PROG_LOAD, &attr));
    ASSERT_GE(fd, 0) << name << ": the kernel rejected the program: " << log.data();
    const std::string pin = fmt::format("/sys/fs/bpf/bpfvm_oracle_{}_{}", getpid(), name);
    union bpf_attr pin_attr {};
    pin_attr.pathname = reinterpret_cast<std::uint64_t>(pin.c_str());
    pin_attr.bpf_fd = static_cast<std::uint32_t>(fd);
    ASSERT_EQ(sys_bpf(BPF_OBJ_PIN, &pin_attr), 0) << std::strerror(errno);

    struct bpf_prog_info info {};
    std::vector<struct bpf_insn> xlated(4096);
    info.xlated_prog_len = static_cast<std::uint32_t>(xlated.size() * sizeof(struct bpf_insn));
    info.xlated_prog_insns = reinterpret_cast<std::uint64_t>(xlated.data());
    union bpf_attr info_attr {};
    info_attr.info.bpf_fd = static_cast<std::uint32_t>(fd);
    info_attr.info.info_len = sizeof info;
    info_attr.info.info = reinterpret_cast<std::uint64_t>(&info);
    ASSERT_EQ(sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &info_attr), 0) << std::strerror(errno);
    std::vector<RawInsn> xl(info.xlated_prog_len / sizeof(struct bpf_insn));
    for (std::size_t i = 0; i < xl.size(); ++i) {
      xl[i] = RawInsn{xlated[i].code, xlated[i].dst_reg, xlated[i].src_reg, xlated[i].off, xlated[i].imm};
      // Once a program with subprograms is jited, its xlated image keeps a local call's pc-relative
      // target in off and the subprogram number in imm (the kernel's jit_subprogs); bpftool prints off
      // and names the jited subprogram ("call pc+2#bpf_prog_<tag>_F"). Restore the wire form.
      if (xl[i].opcode == 0x85 && xl[i].src == kCallLocal && xl[i].off != 0) {
        xl[i].imm = xl[i].off;
        xl[i].off = 0;
      }
    }
    for (bool opcodes : {false, true}) {
      const std::string theirs = run("PATH=\"$PATH:/usr/sbin:/sbin\"; bpftool prog dump xlated pinned " + pin + (opcodes ? " opcodes" : ""));
      MapIds ids;
      DisasmOptions options;
      options.opcodes = opcodes;
      options.resolver = &ids;
      const std::string ours = disassemble(xl, options);
      auto a = normalized_lines(theirs), b = normalized_lines(ours);
      ASSERT_EQ(a.size(), b.size()) << "bpftool:\n" << theirs << "\nbpfvm:\n" << ours;
      for (std::size_t i = 0; i < a.size(); ++i) {
        // Debian's bpftool 7.1 predates the per-CPU mov (kernel 6.8) and prints it as a plain mov, "r0 =
        // r0"; bpfvm prints it as the running kernel's own printer (and newer bpftool) does.
        if (const auto at = b[i].find("&(void __percpu *)(r"); at != std::string::npos && b[i].ends_with(")")) {
          const std::string old_spelling = b[i].substr(0, at) + b[i].substr(at + 19, b[i].size() - at - 20);
          if (a[i] == old_spelling) continue;
        }
        EXPECT_EQ(b[i], a[i]) << name << " line " << i;
      }
      ++compared_;
    }
    unlink(pin.c_str());
    close(fd);
  }

  int map_fd_ = -1;
  int compared_ = 0;
};

TEST_F(KernelOracle, AluAndByteOrder) {
  compare("alu",
          "r6 = r1\nr1 = *(u32 *)(r6 +0)\nr3 = *(u32 *)(r6 +4)\nw2 = -5\nr4 = r1\nw4 = w2\n"
          "r1 += 7\nr1 -= r3\nr1 *= 3\nr1 /= 2\nr1 %= 5\nr1 |= 16\nr1 &= r3\nr1 ^= 1\nr1 <<= 3\nr1 >>= 1\n"
          "r1 s>>= 2\nr1 = -r1\nr1 += r4\nr1 -= -1\nr1 *= r3\nr1 |= r3\nr1 ^= r3\nr1 <<= r3\nr1 >>= r3\n"
          "r1 s>>= r3\nw1 += w2\nw1 -= 3\nw1 *= w2\nw1 /= 3\nw1 %= 7\nw1 |= w2\nw1 &= 255\nw1 ^= w2\n"
          "w1 <<= 2\nw1 >>= 1\nw1 s>>= 1\nw1 = -w1\nw1 <<= w3\nw1 >>= w3\nw1 s>>= w3\n"
          "r1 = be16 r1\nr1 = be32 r1\nr1 = be64 r1\nr1 = le16 r1\nr1 = le32 r1\nr1 = le64 r1\n"
          "r5 = 0x123456789abcdef\nr1 += r5\nr0 = r1\nexit\n");
}

TEST_F(KernelOracle, JumpsAndMemory) {
  std::string text = "r6 = r1\nr1 = *(u32 *)(r6 +0)\nr2 = *(u32 *)(r6 +4)\nr0 = 0\n";
  for (const char* op : {"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"}) {
    text += fmt::format("if r1 {} 0x7 goto pc+1\nr0 += 1\nif r1 {} r2 goto pc+1\nr0 += 2\n", op, op);
    text += fmt::format("if w1 {} 0xfffffff0 goto pc+1\nr0 += 3\nif w1 {} w2 goto pc+1\nr0 += 4\n", op, op);
  }
  text +=
      "*(u64 *)(r10 -8) = r1\n*(u32 *)(r10 -16) = 5\n*(u16 *)(r10 -18) = -6\n*(u8 *)(r10 -19) = 7\n"
      "*(u64 *)(r10 -32) = 8\nr3 = *(u64 *)(r10 -8)\nr4 = *(u32 *)(r10 -16)\nr5 = *(u16 *)(r10 -18)\n"
      "r7 = *(u8 *)(r10 -19)\n*(u32 *)(r10 -24) = r4\n*(u16 *)(r10 -26) = r5\n*(u8 *)(r10 -27) = r7\n"
      "r0 += r3\nif r0 > 0x100 goto pc+1\ngoto pc+1\nr0 = 9\nexit\n";
  compare("jumps", text);
}

TEST_F(KernelOracle, Atomics) {
  compare("atomics",
          "r6 = r1\nr1 = *(u32 *)(r6 +0)\n*(u64 *)(r10 -8) = r1\n*(u64 *)(r10 -16) = r1\nr2 = 1\n"
          "lock *(u64 *)(r10 -8) += r2\nlock *(u64 *)(r10 -8) |= r2\nlock *(u64 *)(r10 -8) &= r2\n"
          "lock *(u64 *)(r10 -8) ^= r2\nlock *(u32 *)(r10 -16) += r2\nlock *(u32 *)(r10 -16) ^= r2\n"
          "r2 = atomic64_fetch_add((u64 *)(r10 -8), r2)\nr2 = atomic64_fetch_and((u64 *)(r10 -8), r2)\n"
          "r2 = atomic_fetch_or((u32 *)(r10 -16), r2)\nr2 = atomic_fetch_xor((u32 *)(r10 -16), r2)\n"
          "r2 = atomic64_xchg((u64 *)(r10 -8), r2)\nr2 = atomic_xchg((u32 *)(r10 -16), r2)\nr0 = r1\n"
          "r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)\nr0 = atomic_cmpxchg((u32 *)(r10 -16), r0, r2)\n"
          "r0 = 0\nexit\n");
}

// What the kernel's verifier writes into a program (kernel 6.8+ inlines bpf_get_smp_processor_id into a
// per-CPU load; a 32-bit cmpxchg gets a zero-extension, above): bpfvm prints it as bpftool does.
TEST_F(KernelOracle, KernelInsertedInstructions) {
  compare("inlined", "call bpf_get_smp_processor_id#8\nr0 = 0\nexit\n");
}

TEST_F(KernelOracle, HelpersMapsAndSubprograms) {
  compare("calls",
          "r6 = r1\ncall bpf_ktime_get_ns#5\ncall bpf_get_prandom_u32#7\n*(u32 *)(r10 -4) = 0\nr2 = r10\n"
          "r2 += -4\nr1 = map[fd:MAPFD]\ncall bpf_map_lookup_elem#1\nr7 = map[fd:MAPFD][0]+8\n"
          "r1 = *(u64 *)(r7 +0)\ncall pc+2\nr0 = 0\nexit\nr0 = 1\nexit\n");
}

}  // namespace
}  // namespace bpfvm::isa
