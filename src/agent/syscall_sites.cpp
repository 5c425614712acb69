// The agent's syscall sites (see include/bpfvm/agent/syscall_sites.hpp).
#include "bpfvm/agent/syscall_sites.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/obj/native_elf.hpp"
#include "patching.hpp"

namespace bpfvm::agent {

namespace {

using namespace detail;

constinit std::uint8_t g_table[kSyscallTableSize] = {};
constinit std::atomic<ProbeHandler> g_handler{nullptr};

constinit std::atomic<ProbeHandler> g_after_fork{nullptr};

// The trampolines call this; it calls the agent's handler, or lets the syscall run when there is none.
void dispatch(PtRegs* regs, void* data) {
  if (const ProbeHandler h = g_handler.load(std::memory_order_acquire)) return h(regs, data);
  regs->rcx = 0;
}

// After a clone-family syscall the handler let run with rcx = 2, in the parent (rax: the child's id or
// an error) and in the child (rax 0: a new thread on its own stack, a forked process, or a vfork child
// on its parent's stack, which is suspended until it execs or exits).
void dispatch_after_fork(PtRegs* regs, void* data) {
  if (const ProbeHandler h = g_after_fork.load(std::memory_order_acquire)) h(regs, data);
}

// Whether the site's syscall may be clone, fork, vfork or clone3: its number is unknown (not set by a
// `mov $NR, %eax` in the window) or one of those.
bool may_fork(std::uintptr_t from, std::uintptr_t at) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(from);
  if (at - from != 5 || p[0] != 0xb8) return true;
  std::uint32_t nr;
  std::memcpy(&nr, p + 1, 4);
  return nr == SYS_clone || nr == SYS_fork || nr == SYS_vfork || nr == SYS_clone3;
}

struct Site {
  std::uintptr_t at = 0;                    // the syscall instruction
  std::uintptr_t prev = 0, next_end = 0;    // the instruction before it (0: unknown), the end of the one after
  std::size_t prev_len = 0, next_len = 0;
  bool prev_is_mov_eax = false;             // mov $imm32, %eax (the number, set right before)
};

void put32(std::vector<std::uint8_t>& out, std::size_t at, std::int64_t value) {
  const auto v = static_cast<std::int32_t>(value);
  std::memcpy(out.data() + at, &v, 4);
}

// The trampoline of the window [from, to) holding the syscall at `at`:
//   the instructions before the syscall, relocated
//   movzx ecx, ax; mov r11, table; movzx ecx, byte [r11+rcx]; jrcxz native; jmp slow
//   native: syscall
//   post:   the instructions after it, relocated, and a jump back to `to`
//   slow:   the state wrapper calling dispatch (rip: after the syscall), then by rcx (flag-free):
//           0: jmp native; 1 (performed): jmp post; 2 (a fork to see returning): jmp forking
//   forking (where the syscall may be of the clone family): syscall; the state wrapper calling
//           dispatch_after_fork (in the parent and the child); jmp post
// `vectors_dead`: no vector register is read after the syscall before a call or a return (see
// vectors_dead_after): the wrappers save only xmm0-7, as at a call boundary, not the whole XSAVE state.
Result<std::vector<std::uint8_t>> build(const ZydisDecoder& dec, std::uintptr_t from, std::uintptr_t at,
                                        std::uintptr_t to, std::uintptr_t tramp, bool vectors_dead) {
  std::vector<std::uint8_t> code;
  if (at > from) {
    Relocation pre = BPFVM_TRY(relocate(dec, from, at, tramp, at - from));
    // Without the jump back relocate() ends with: the check and the syscall follow.
    code.assign(pre.code.begin(), pre.code.end() - static_cast<std::ptrdiff_t>(std::min(kAbsJumpSize, pre.code.size())));
  }
  const std::uint64_t table = reinterpret_cast<std::uint64_t>(g_table);
  for (std::uint8_t b : {0x0f, 0xb7, 0xc8, 0x49, 0xbb}) code.push_back(b);
  for (int i = 0; i < 8; ++i) code.push_back(static_cast<std::uint8_t>(table >> (8 * i)));
  for (std::uint8_t b : {0x41, 0x0f, 0xb6, 0x0c, 0x0b, 0xe3, 0x05, 0xe9, 0, 0, 0, 0}) code.push_back(b);
  const std::size_t jmp_slow = code.size() - 4;
  const std::size_t native = code.size();
  code.push_back(0x0f);
  code.push_back(0x05);
  const std::size_t post = code.size();
  if (to > at + 2) {
    Relocation rest = BPFVM_TRY(relocate(dec, at + 2, to, tramp + post, to - (at + 2)));
    code.insert(code.end(), rest.code.begin(), rest.code.end());
  } else {
    code.push_back(0xe9);
    code.insert(code.end(), 4, 0);
    put32(code, code.size() - 4, static_cast<std::int64_t>(to - (tramp + code.size())));
  }
  const std::size_t slow = code.size();
  put32(code, jmp_slow, static_cast<std::int64_t>(slow) - static_cast<std::int64_t>(jmp_slow + 4));
  const auto wrapper = BPFVM_TRY(state_wrapper(at + 2, dispatch, nullptr, false, vectors_dead));
  code.insert(code.end(), wrapper.begin(), wrapper.end());
  auto jmp_to = [&](std::size_t target) {
    code.push_back(0xe9);
    code.insert(code.end(), 4, 0);
    put32(code, code.size() - 4, static_cast<std::int64_t>(target) - static_cast<std::int64_t>(code.size()));
  };
  // jrcxz L0; lea rcx, [rcx-1]; jrcxz L1; jmp forking (or native); L0: jmp native; L1: jmp post
  for (std::uint8_t b : {0xe3, 0x0b, 0x48, 0x8d, 0x49, 0xff, 0xe3, 0x0a}) code.push_back(b);
  const std::size_t jmp_forking = code.size();
  jmp_to(native);
  jmp_to(native);
  jmp_to(post);
  if (may_fork(from, at)) {
    const std::size_t forking = code.size();
    put32(code, jmp_forking + 1, static_cast<std::int64_t>(forking) - static_cast<std::int64_t>(jmp_forking + 5));
    // syscall; the wrapper (in the parent and in the child: a vfork child shares its parent's memory
    // and thread-locals, and must not be taken for it); jmp post
    for (std::uint8_t b : {0x0f, 0x05}) code.push_back(b);
    const auto after = BPFVM_TRY(state_wrapper(at + 2, dispatch_after_fork, nullptr, false, vectors_dead));
    code.insert(code.end(), after.begin(), after.end());
    jmp_to(post);
  }
  return code;
}

}  // namespace

std::uint8_t* syscall_table() { return g_table; }

void set_syscall_handler(ProbeHandler handler) { g_handler.store(handler, std::memory_order_release); }
void set_after_fork_handler(ProbeHandler handler) { g_after_fork.store(handler, std::memory_order_release); }

std::int64_t raw_syscall(std::uint64_t nr, const std::uint64_t* a) {
  std::int64_t ret;
  register std::uint64_t r10 __asm__("r10") = a[3];
  register std::uint64_t r8 __asm__("r8") = a[4];
  register std::uint64_t r9 __asm__("r9") = a[5];
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory", "cc");
  return ret;
}

namespace {

// Where each syscall site of a mapping is patched, in file offsets: the sweep's result, which depends only
// on the file's bytes and the mapping's extent, so it is cached per file (see below).
struct Window {
  std::uint64_t from = 0, at = 0, to = 0;
  bool vectors_dead = false;
};
struct Plan {
  std::vector<Window> windows;
  std::vector<std::pair<std::uint64_t, std::string>> left;  // sites that cannot be patched, and why
};

// Whether the code after a syscall instruction (`after`) can reach no read of a vector, mask, MMX or x87
// register before a call or a return: the System V ABI leaves live there only xmm0-7 (a call's
// arguments) and xmm0-1 (a return's values), which the call-boundary form of the state wrapper saves
// whole, while the full XSAVEC/XRSTOR of this machine's AVX-512 state costs about 130 ns per event
// (bench/RESULTS.md: the syscall workload). The kernel's syscall itself keeps every vector register.
// Every path is followed (both ways of a conditional branch, direct jumps, over other syscalls), up to
// 64 instructions in all; any instruction not plainly of the integer kinds below, an indirect jump, code
// outside `code` (ranges of executable bytes) or past the budget answers false (the whole state is saved, as before). glibc's
// wrappers return or call (the cancellation calls) within a few instructions of their syscall.
bool vectors_dead_after(const ZydisDecoder& dec, std::uintptr_t after,
                        const std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& code) {
  auto room = [&](std::uintptr_t at) -> std::size_t {  // bytes of code from `at` to its range's end
    for (const auto& [lo, hi] : code) {
      if (at >= lo && at < hi) return hi - at;
    }
    return 0;
  };
  std::vector<std::uintptr_t> work{after}, seen;
  int budget = 64;
  while (!work.empty()) {
    const std::uintptr_t at = work.back();
    work.pop_back();
    if (std::find(seen.begin(), seen.end(), at) != seen.end()) continue;
    seen.push_back(at);
    const std::size_t avail = room(at);
    Decoded d;
    if (--budget < 0 || avail == 0 || !decode(dec, at, avail, d)) return false;
    for (std::size_t i = 0; i < d.insn.operand_count; ++i) {
      if (d.ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER) continue;
      switch (ZydisRegisterGetClass(d.ops[i].reg.value)) {
        case ZYDIS_REGCLASS_X87: case ZYDIS_REGCLASS_MMX: case ZYDIS_REGCLASS_XMM: case ZYDIS_REGCLASS_YMM:
        case ZYDIS_REGCLASS_ZMM: case ZYDIS_REGCLASS_MASK: case ZYDIS_REGCLASS_TMM:
          return false;
        default:
          break;
      }
    }
    const std::uintptr_t next = at + d.insn.length;
    const bool relative = d.insn.operand_count_visible > 0 && d.ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
                          d.ops[0].imm.is_relative;
    const std::uintptr_t target = relative ? next + static_cast<std::uintptr_t>(d.ops[0].imm.value.s) : 0;
    switch (d.insn.meta.category) {
      case ZYDIS_CATEGORY_RET:
      case ZYDIS_CATEGORY_CALL:
        break;  // a boundary: what may be live is saved
      case ZYDIS_CATEGORY_UNCOND_BR:
        if (!relative) return false;
        work.push_back(target);
        break;
      case ZYDIS_CATEGORY_COND_BR:
        if (!relative) return false;
        work.push_back(target);
        work.push_back(next);
        break;
      case ZYDIS_CATEGORY_SYSCALL: case ZYDIS_CATEGORY_BINARY: case ZYDIS_CATEGORY_LOGICAL:
      case ZYDIS_CATEGORY_DATAXFER: case ZYDIS_CATEGORY_CMOV: case ZYDIS_CATEGORY_SETCC: case ZYDIS_CATEGORY_SHIFT:
      case ZYDIS_CATEGORY_ROTATE: case ZYDIS_CATEGORY_BITBYTE: case ZYDIS_CATEGORY_CONVERT: case ZYDIS_CATEGORY_NOP:
      case ZYDIS_CATEGORY_WIDENOP: case ZYDIS_CATEGORY_FLAGOP: case ZYDIS_CATEGORY_PUSH: case ZYDIS_CATEGORY_POP:
      case ZYDIS_CATEGORY_SEMAPHORE: case ZYDIS_CATEGORY_STRINGOP: case ZYDIS_CATEGORY_BMI1:
      case ZYDIS_CATEGORY_BMI2: case ZYDIS_CATEGORY_LZCNT: case ZYDIS_CATEGORY_CET:
        work.push_back(next);
        break;
      case ZYDIS_CATEGORY_MISC:  // lea, leave, pause...; not ud2 (a signal's handler sees every register)
        if (d.insn.mnemonic == ZYDIS_MNEMONIC_UD0 || d.insn.mnemonic == ZYDIS_MNEMONIC_UD1 ||
            d.insn.mnemonic == ZYDIS_MNEMONIC_UD2) {
          return false;
        }
        work.push_back(next);
        break;
      default:
        return false;
    }
  }
  return true;
}

// One linear pass over each section of code: the syscall instructions with their neighbours, and every
// direct branch's target; then each site's window.
Result<Plan> sweep(const std::string& path, std::uintptr_t start, std::uintptr_t end, std::uint64_t offset) {
  const obj::NativeCode file = BPFVM_TRY(obj::native_code(path));
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  const std::uint64_t map_size = end - start;
  auto address_of = [&](std::uint64_t file_offset) { return start + (file_offset - offset); };
  auto mapped = [&](std::uint64_t file_offset) { return file_offset >= offset && file_offset < offset + map_size; };

  std::vector<std::uintptr_t> targets;
  for (const std::uint64_t f : file.functions) {
    if (mapped(f)) targets.push_back(address_of(f));
  }
  std::vector<Site> sites;
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  for (const auto& range : file.code) {
    const std::uint64_t lo = std::max(range.file_offset, offset);
    const std::uint64_t hi = std::min(range.file_offset + range.size, offset + map_size);
    if (lo >= hi) continue;
    const std::uintptr_t a0 = address_of(lo), a1 = address_of(hi);
    ranges.emplace_back(a0, a1);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(a0);
    std::uintptr_t prev = 0;
    std::size_t prev_len = 0;
    std::size_t pending = SIZE_MAX;  // a site waiting for the instruction after it
    for (std::size_t off = 0; off < a1 - a0;) {
      ZydisDecodedInstruction insn;
      if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, nullptr, bytes + off, a1 - a0 - off, &insn))) {
        ++off;  // not code: no neighbour is known across it
        prev = 0;
        pending = SIZE_MAX;
        continue;
      }
      const std::uintptr_t at = a0 + off;
      if (pending != SIZE_MAX) {
        sites[pending].next_len = insn.length;
        sites[pending].next_end = at + insn.length;
        pending = SIZE_MAX;
      }
      const auto cat = insn.meta.category;
      if ((cat == ZYDIS_CATEGORY_COND_BR || cat == ZYDIS_CATEGORY_UNCOND_BR || cat == ZYDIS_CATEGORY_CALL) &&
          insn.raw.imm[0].is_relative) {
        targets.push_back(at + insn.length + static_cast<std::uintptr_t>(insn.raw.imm[0].value.s));
      }
      if (insn.mnemonic == ZYDIS_MNEMONIC_SYSCALL) {
        Site st;
        st.at = at;
        st.prev = prev;
        st.prev_len = prev_len;
        st.prev_is_mov_eax = prev && prev_len == 5 && reinterpret_cast<const std::uint8_t*>(prev)[0] == 0xb8;
        sites.push_back(st);
        pending = sites.size() - 1;
      }
      prev = at;
      prev_len = insn.length;
      off += insn.length;
    }
  }
  std::sort(targets.begin(), targets.end());
  auto is_target = [&](std::uintptr_t a) { return std::binary_search(targets.begin(), targets.end(), a); };
  auto in_one_range = [&](std::uintptr_t a, std::uintptr_t b) {
    for (const auto& [lo, hi] : ranges) {
      if (a >= lo && b <= hi) return true;
    }
    return false;
  };
  auto file_offset = [&](std::uintptr_t a) { return a - start + offset; };
  Plan plan;
  for (const Site& st : sites) {
    // The window: [mov $NR, %eax; syscall], else [syscall; the next instruction], else [the previous
    // instruction; syscall], else all three: five bytes or more that no branch enters but at their start.
    std::uintptr_t from = 0, to = 0;
    if (st.prev_is_mov_eax && !is_target(st.at)) {
      from = st.prev, to = st.at + 2;
    } else if (st.next_len >= 3 && !is_target(st.at + 2)) {
      from = st.at, to = st.next_end;
    } else if (st.prev && st.prev_len >= 3 && !is_target(st.at)) {
      from = st.prev, to = st.at + 2;
    } else if (st.prev && st.next_len > 0 && st.prev_len + 2 + st.next_len >= kJmpSize && !is_target(st.at) &&
               !is_target(st.at + 2)) {
      from = st.prev, to = st.next_end;  // both short neighbours: glibc's exit loops, the setxid handler
    }
    if (!from || !in_one_range(from, to)) {
      plan.left.emplace_back(file_offset(st.at), "no five bytes around it that branches do not enter");
      continue;
    }
    plan.windows.push_back({file_offset(from), file_offset(st.at), file_offset(to),
                            vectors_dead_after(dec, st.at + 2, ranges)});
  }
  return plan;
}

// The cache: a plan per (file, mapping) in a directory private to this user, named by the file's
// device, inode, size and modification time, so a changed file is swept again. A plan read back is
// checked against the mapping (each site still a syscall instruction, each window inside it) before use.
constexpr std::string_view kPlanHeader = "bpfvm syscall sites 3";

std::string plan_file(const std::string& dir, const std::string& path, std::uint64_t offset, std::uint64_t size) {
  struct stat st {};
  if (dir.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return fmt::format("{}/{:x}-{:x}-{:x}-{:x}.{:09}-{:x}-{:x}", dir, static_cast<std::uint64_t>(st.st_dev),
                     static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                     static_cast<std::uint64_t>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec), offset,
                     size);
}

std::optional<Plan> read_plan(const std::string& file, std::uintptr_t start, std::uint64_t offset,
                              std::uint64_t size) {
  auto text = os::read_text_file(file);
  if (!text || !text->starts_with(kPlanHeader)) return std::nullopt;
  Plan plan;
  std::size_t pos = text->find('\n');
  while (pos != std::string::npos && pos + 1 < text->size()) {
    const std::size_t eol = text->find('\n', pos + 1);
    const std::string line = text->substr(pos + 1, eol == std::string::npos ? std::string::npos : eol - pos - 1);
    pos = eol;
    unsigned long long a = 0, b = 0, c = 0;
    int used = 0, dead = 0;
    if (std::sscanf(line.c_str(), "w %llx %llx %llx %d", &a, &b, &c, &dead) == 4) {
      const bool inside = a >= offset && c <= offset + size && a <= b && b + 2 <= c && c - a >= kJmpSize;
      if (!inside) return std::nullopt;
      const auto* p = reinterpret_cast<const std::uint8_t*>(start + (b - offset));
      if (p[0] != 0x0f || p[1] != 0x05) return std::nullopt;
      plan.windows.push_back({a, b, c, dead == 1});
    } else if (std::sscanf(line.c_str(), "l %llx %n", &a, &used) == 1 && used > 0) {
      plan.left.emplace_back(a, line.substr(static_cast<std::size_t>(used)));
    } else {
      return std::nullopt;
    }
  }
  return plan;
}

void write_plan(const std::string& file, const Plan& plan) {
  std::string text(kPlanHeader);
  text += '\n';
  for (const Window& w : plan.windows) text += fmt::format("w {:x} {:x} {:x} {:d}\n", w.from, w.at, w.to, w.vectors_dead ? 1 : 0);
  for (const auto& [at, why] : plan.left) text += fmt::format("l {:x} {}\n", at, why);
  (void)os::replace_file(file, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

}  // namespace

Result<SyscallSites> hook_syscall_sites(const std::string& path, std::uintptr_t start, std::uintptr_t end,
                                        std::uint64_t offset, bool alone, const std::string& cache_dir,
                                        std::vector<PreparedSite>* prepared) {
  const std::uint64_t map_size = end - start;
  const std::string cached = plan_file(cache_dir, path, offset, map_size);
  std::optional<Plan> plan;
  if (!cached.empty()) plan = read_plan(cached, start, offset, map_size);
  if (!plan) {
    plan = BPFVM_TRY(sweep(path, start, end, offset));
    if (!cached.empty()) write_plan(cached, *plan);
  }

  SyscallSites out;
  for (const auto& [at, why] : plan->left) out.left.push_back(fmt::format("{}+{:#x}: {}", path, at, why));
  if (plan->windows.empty()) return out;
  if (!alone && !prepared) {
    for (const Window& w : plan->windows) out.left.push_back(fmt::format("{}+{:#x}: other threads run", path, w.at));
    return out;
  }
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  auto address_of = [&](std::uint64_t file_offset) { return start + (file_offset - offset); };
  std::lock_guard lock(g_chunks_mutex);
  if (alone && ::mprotect(reinterpret_cast<void*>(start), map_size, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
    return make_error(Errc::kPermission, "cannot make '{}' writable to patch its syscalls: {}", path, std::strerror(errno));
  }
  std::vector<std::pair<std::uintptr_t, std::vector<std::uint8_t>>> writes;
  std::vector<std::pair<PreparedSite, std::uint64_t>> sites;  // and each one's file offset
  for (const Window& w : plan->windows) {
    const std::uintptr_t from = address_of(w.from), at = address_of(w.at), to = address_of(w.to);
    // Its size first (it does not depend on where it goes), then the code for where it is.
    auto sized = build(dec, from, at, to, at, w.vectors_dead);
    if (!sized) {
      out.left.push_back(fmt::format("{}+{:#x}: {}", path, w.at, sized.error().message()));
      continue;
    }
    const std::uintptr_t tramp = allocate_near(at, sized->size());
    if (!tramp) {
      out.left.push_back(fmt::format("{}+{:#x}: no memory for a trampoline within 2 GiB", path, w.at));
      continue;
    }
    auto code = build(dec, from, at, to, tramp, w.vectors_dead);
    if (!code) {
      out.left.push_back(fmt::format("{}+{:#x}: {}", path, w.at, code.error().message()));
      continue;
    }
    PreparedSite site;
    site.from = from;
    site.to = to;
    if (to - from > sizeof site.bytes) {
      out.left.push_back(fmt::format("{}+{:#x}: a window of {} bytes", path, w.at, to - from));
      continue;
    }
    site.bytes[0] = 0xe9;
    const auto rel = static_cast<std::int32_t>(static_cast<std::int64_t>(tramp - (from + kJmpSize)));
    std::memcpy(site.bytes + 1, &rel, 4);
    std::memset(site.bytes + kJmpSize, 0xcc, to - from - kJmpSize);  // never executed: no branch lands there
    writes.emplace_back(tramp, std::move(*code));
    sites.push_back({site, w.at});
  }
  // Every trampoline first (one change of protection per run of pages), then the jumps to them.
  if (auto r = write_trampolines(writes); !r) {
    for (const auto& [site, at] : sites) out.left.push_back(fmt::format("{}+{:#x}: {}", path, at, r.error().message()));
    sites.clear();
  }
  for (const auto& [site, at] : sites) {
    if (!alone) {
      prepared->push_back(site);
      continue;
    }
    std::memcpy(reinterpret_cast<std::uint8_t*>(site.from), site.bytes, site.to - site.from);
    ++out.hooked;
  }
  if (!alone) return out;
  ::mprotect(reinterpret_cast<void*>(start), map_size, PROT_READ | PROT_EXEC);
  __builtin___clear_cache(reinterpret_cast<char*>(start), reinterpret_cast<char*>(end));
  return out;
}

std::size_t commit_prepared_sites(const std::vector<PreparedSite>& sites, const std::uint64_t* positions,
                                  std::size_t count) {
  constexpr std::uintptr_t kPage = 4096;
  std::size_t written = 0;
  for (const PreparedSite& site : sites) {
    bool inside = false;
    for (std::size_t i = 0; i < count && !inside; ++i) inside = positions[i] > site.from && positions[i] < site.to;
    if (inside) continue;
    const std::uintptr_t page = site.from & ~(kPage - 1);
    const std::uint64_t len = ((site.to + kPage - 1) & ~(kPage - 1)) - page;
    const std::uint64_t rwx[6] = {page, len, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0};
    if (raw_syscall(SYS_mprotect, rwx) != 0) continue;
    std::memcpy(reinterpret_cast<std::uint8_t*>(site.from), site.bytes, site.to - site.from);
    const std::uint64_t rx[6] = {page, len, PROT_READ | PROT_EXEC, 0, 0, 0};
    raw_syscall(SYS_mprotect, rx);
    __builtin___clear_cache(reinterpret_cast<char*>(site.from), reinterpret_cast<char*>(site.to));
    ++written;
  }
  return written;
}

}  // namespace bpfvm::agent
