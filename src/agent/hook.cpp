// Entry and return probes in this process's code (see include/bpfvm/agent/hook.hpp).
#include "bpfvm/agent/hook.hpp"

#include "bpfvm/base/process.hpp"
#include "bpfvm/base/wakeup.hpp"
#include "bpfvm/agent/syscall_sites.hpp"
#include "patching.hpp"
#include "user_memory.hpp"
#include "signals.hpp"
#include "forked.hpp"

#include <Zydis/Zydis.h>
#include <asmjit/x86.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <link.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ucontext.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace bpfvm::agent {

namespace detail {

constexpr std::int64_t kRedZone = 128;  // the System V ABI's red zone below rsp

// ---- the code and where it may be written ----------------------------------------------------------

// The protection of the mapping holding `address` (from /proc/self/maps), or -1.
int protection_of(std::uintptr_t address) {
  for (const os::Mapping& m : os::read_mappings()) {
    if (address < m.start || address >= m.end) continue;
    return (m.perms[0] == 'r' ? PROT_READ : 0) | (m.perms[1] == 'w' ? PROT_WRITE : 0) | (m.perms[2] == 'x' ? PROT_EXEC : 0);
  }
  return -1;
}

// Stores `value` at the aligned 16-byte `p` if it still holds `expected` (lock cmpxchg16b).
bool cas16(void* p, const std::uint8_t* expected, const std::uint8_t* value) {
  std::uint64_t e[2], v[2];
  std::memcpy(e, expected, 16);
  std::memcpy(v, value, 16);
  bool ok;
  __asm__ __volatile__("lock cmpxchg16b %1"
                       : "=@ccz"(ok), "+m"(*static_cast<volatile unsigned __int128*>(p)), "+a"(e[0]), "+d"(e[1])
                       : "b"(v[0]), "c"(v[1])
                       : "memory");
  return ok;
}

// ---- trampolines: executable memory within 2 GiB of the code they serve --------------------------

struct Chunk {
  std::uintptr_t start;
  std::size_t size, used;
};

// Where trampolines and islands are, made on first use and never destroyed: the preloaded agent installs
// probes from a constructor that may run before this file's, and probes stay in place during exit.
struct Patches {
  std::vector<Chunk> chunks;
  // Padding bytes already holding an island's jump, and the island of each probed address: an island
  // stays its address's (a thread may be between the short jump and the island's jump when a probe goes,
  // and must still land in a trampoline of that address).
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> islands;
  std::map<std::uintptr_t, std::uintptr_t> island_of;
};
Patches& patches() {
  static Patches* p = new Patches;
  return *p;
}
constinit std::mutex g_chunks_mutex;  // declared in patching.hpp
constexpr std::size_t kChunkSize = 64 * 1024;

bool within_rel32(std::uintptr_t a, std::uintptr_t b) {
  const std::int64_t d = static_cast<std::int64_t>(a - b);
  return d > -(std::int64_t{1} << 31) + static_cast<std::int64_t>(kChunkSize) &&
         d < (std::int64_t{1} << 31) - static_cast<std::int64_t>(kChunkSize);
}

// `size` bytes of read+execute memory near `near` (null when none is free within reach).
std::uintptr_t allocate_near(std::uintptr_t near, std::size_t size) {
  size = (size + 63) & ~std::size_t{63};
  for (Chunk& c : patches().chunks) {
    if (c.size - c.used >= size && within_rel32(c.start, near) && within_rel32(c.start + c.size, near)) {
      const std::uintptr_t at = c.start + c.used;
      c.used += size;
      return at;
    }
  }
  const std::uintptr_t base = near & ~(std::uintptr_t{kChunkSize} - 1);
  for (std::uintptr_t step = 1; step < 16384; ++step) {  // 1 GiB either side, in chunk steps
    for (const int dir : {-1, 1}) {
      const std::uintptr_t hint = base + dir * static_cast<std::intptr_t>(step * kChunkSize);
      if (hint < 0x10000 || hint >= (std::uintptr_t{1} << 47)) continue;
      void* p = ::mmap(reinterpret_cast<void*>(hint), kChunkSize, PROT_READ | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p == MAP_FAILED) continue;
      if (reinterpret_cast<std::uintptr_t>(p) != hint) {  // an old kernel ignoring the flag
        ::munmap(p, kChunkSize);
        continue;
      }
      patches().chunks.push_back({hint, kChunkSize, size});
      return hint;
    }
  }
  return 0;
}

Result<void> write_trampolines(const std::vector<std::pair<std::uintptr_t, std::vector<std::uint8_t>>>& writes) {
  // One mprotect pair per run of adjacent pages rather than per trampoline: each splits and merges the
  // mapping (a few microseconds each, over a thousand for a process's syscall sites).
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> spans;  // page ranges, merged
  for (const auto& [at, code] : writes) {
    spans.emplace_back(at & ~std::uintptr_t{4095}, (at + code.size() + 4095) & ~std::uintptr_t{4095});
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second) merged.back().second = std::max(merged.back().second, s.second);
    else merged.push_back(s);
  }
  for (const auto& [lo, hi] : merged) {
    if (::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
      return make_error(Errc::kPermission, "cannot write a trampoline: mprotect: {}", std::strerror(errno));
    }
  }
  for (const auto& [at, code] : writes) {
    std::memcpy(reinterpret_cast<void*>(at), code.data(), code.size());
    __builtin___clear_cache(reinterpret_cast<char*>(at), reinterpret_cast<char*>(at + code.size()));
  }
  for (const auto& [lo, hi] : merged) ::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_EXEC);
  return {};
}

Result<void> write_trampoline(std::uintptr_t at, const std::vector<std::uint8_t>& code) {
  return write_trampolines({{at, code}});
}

// ---- saving and restoring the probed code's state ---------------------------------------------------

struct ExtendedState {
  bool xsave = false, xsavec = false;
  std::uint32_t size = 512;  // fxsave's area without XSAVE
  int vector_bytes = 16;     // the width of the vector registers the OS enabled: 16, 32 (AVX), 64 (AVX-512)
};

const ExtendedState& extended_state() {
  static const ExtendedState s = [] {
    ExtendedState e;
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 26)) && (c & (1u << 27))) {  // XSAVE, OSXSAVE
      e.xsave = true;
      __cpuid_count(0xd, 0, a, b, c, d);
      e.size = b;  // the standard format's size for the features the OS enabled (XCR0)
      __cpuid_count(0xd, 1, a, b, c, d);
      e.xsavec = (a & 2) != 0;
      std::uint32_t lo, hi;
      __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      const bool avx = (lo & 0x6) == 0x6;
      __cpuid_count(7, 0, a, b, c, d);
      if (avx && (lo & 0xe0) == 0xe0 && (b & (1u << 16))) e.vector_bytes = 64;  // opmask, ZMM_Hi256, Hi16_ZMM
      else if (avx) e.vector_bytes = 32;
    }
    return e;
  }();
  return s;
}

constexpr int kRegOrder[] = {/* r15 */ 0, /* r14 */ 1, /* r13 */ 2, /* r12 */ 3, /* rbp */ 4, /* rbx */ 5,
                             /* r11 */ 6, /* r10 */ 7, /* r9 */ 8, /* r8 */ 9, /* rax */ 10, /* rcx */ 11,
                             /* rdx */ 12, /* rsi */ 13, /* rdi */ 14};

asmjit::x86::Gp reg_at(int slot) {
  using namespace asmjit::x86;
  static const Gp regs[] = {r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi};
  return regs[slot];
}

// The trampoline's first part: step over the red zone, save the flags, the registers as pt_regs and the
// extended state, call handler(regs, data), restore it all. Position independent. `rip` 0: the handler
// fills it (a return probe); `ret_via_stack`: end with `lea rsp,[rsp-8]; ret` (a return probe resumes
// at the address its handler wrote just below the stack pointer).
//
// `at_call_boundary`: the probe is at a function's entry or return, where the System V ABI says which
// vector state is live: the argument registers xmm0-7 (whole, for __m256/__m512 arguments) at entry,
// xmm0-1 (and st0-1, which bpfvm's handlers never touch) at return; the others are the caller's to
// lose, and MXCSR and the x87 control word are never changed by the handler. Saving those 8 registers
// costs a few nanoseconds where XSAVEC/XRSTOR of the whole AVX-512 state costs over a hundred. Anywhere
// else in a function every register may be live, and the whole state is saved.
namespace {

Result<std::vector<std::uint8_t>> assemble_state_wrapper(std::uint64_t rip, ProbeHandler handler, void* data,
                                                         bool ret_via_stack, bool at_call_boundary) {
  using namespace asmjit;
  using namespace asmjit::x86;
  CodeHolder holder;
  holder.init(Environment::host());
  Assembler a(&holder);
  const ExtendedState& xs = extended_state();
  constexpr int kRegs = static_cast<int>(sizeof(PtRegs));
  a.lea(rsp, ptr(rsp, -kRedZone));
  a.pushfq();
  a.cld();  // the ABI's direction flag for the handler; the probed code's comes back with popfq
  a.sub(rsp, kRegs);
  for (int slot : kRegOrder) a.mov(ptr(rsp, slot * 8), reg_at(slot));
  a.mov(rax, ptr(rsp, kRegs));
  a.mov(ptr(rsp, offsetof(PtRegs, eflags)), rax);
  a.lea(rax, ptr(rsp, kRegs + 8 + kRedZone));
  a.mov(ptr(rsp, offsetof(PtRegs, rsp)), rax);
  a.mov(rax, rip);
  a.mov(ptr(rsp, offsetof(PtRegs, rip)), rax);
  a.mov(qword_ptr(rsp, offsetof(PtRegs, orig_rax)), -1);
  a.mov(qword_ptr(rsp, offsetof(PtRegs, cs)), 0x33);  // the kernel's __USER_CS and __USER_DS
  a.mov(qword_ptr(rsp, offsetof(PtRegs, ss)), 0x2b);
  a.mov(rbx, rsp);
  a.sub(rsp, static_cast<std::int32_t>(at_call_boundary ? 8 * xs.vector_bytes : xs.size));
  a.and_(rsp, -64);
  auto vectors = [&](bool save) {
    for (int i = 0; i < 8; ++i) {
      const Mem slot = ptr(rsp, i * xs.vector_bytes);
      if (xs.vector_bytes == 64) save ? a.vmovdqu64(slot, zmm(i)) : a.vmovdqu64(zmm(i), slot);
      else if (xs.vector_bytes == 32) save ? a.vmovdqu(slot, ymm(i)) : a.vmovdqu(ymm(i), slot);
      else save ? a.movdqu(slot, xmm(i)) : a.movdqu(xmm(i), slot);
    }
  };
  if (at_call_boundary) {
    vectors(true);
    // The other registers' vector state is the caller's to lose here: their upper halves are cleared, so
    // that the handler's SSE code does not run against a dirty upper state (a stall per instruction).
    if (xs.vector_bytes > 16) a.vzeroupper();
  } else if (xs.xsave) {
    a.xor_(eax, eax);
    for (int i = 0; i < 8; ++i) a.mov(ptr(rsp, 512 + i * 8), rax);  // the XSAVE header XRSTOR checks
    a.mov(eax, -1);
    a.mov(edx, -1);
    if (xs.xsavec) a.xsavec64(ptr(rsp), edx, eax);
    else a.xsave64(ptr(rsp), edx, eax);
    if (xs.vector_bytes > 16) a.vzeroupper();  // all saved, XRSTOR puts it back; as above, for the handler
  } else {
    a.fxsave64(ptr(rsp));
  }
  a.mov(rdi, rbx);
  a.mov(rsi, reinterpret_cast<std::uint64_t>(data));
  a.mov(rax, reinterpret_cast<std::uint64_t>(handler));
  a.call(rax);
  if (at_call_boundary) {
    vectors(false);
  } else if (xs.xsave) {
    a.mov(eax, -1);
    a.mov(edx, -1);
    a.xrstor64(ptr(rsp), edx, eax);
  } else {
    a.fxrstor64(ptr(rsp));
  }
  a.mov(rsp, rbx);
  for (int slot : kRegOrder) a.mov(reg_at(slot), ptr(rsp, slot * 8));
  a.add(rsp, kRegs);
  a.popfq();
  a.lea(rsp, ptr(rsp, kRedZone));
  if (ret_via_stack) {
    a.lea(rsp, ptr(rsp, -8));
    a.ret();
  }
  holder.flatten();
  const std::size_t size = holder.codeSize();
  std::vector<std::uint8_t> out(size);
  if (holder.copyFlattenedData(out.data(), size, CopySectionFlags::kPadSectionBuffer) != kErrorOk) {
    return make_error(Errc::kInvalid, "cannot encode a probe trampoline");
  }
  return out;
}

}  // namespace

// Assembled once per (handler, data, form) with a stand-in rip, which each call replaces: the agent makes
// one for each of a process's ~500 syscall sites as it starts (asmjit's assembly of each was a
// noticeable part of a traced command's start).
Result<std::vector<std::uint8_t>> state_wrapper(std::uint64_t rip, ProbeHandler handler, void* data, bool ret_via_stack,
                                                bool at_call_boundary) {
  constexpr std::uint64_t kStandIn = 0x8badf00d5eedc0deULL;  // a 64-bit immediate: always mov rax, imm64
  struct Template {
    ProbeHandler handler;
    void* data;
    bool ret_via_stack, at_call_boundary;
    std::vector<std::uint8_t> code;
    std::size_t rip_at;
  };
  static std::mutex mutex;
  static std::vector<Template>* templates = new std::vector<Template>;  // never destroyed (probes outlive exit)
  std::lock_guard lock(mutex);
  auto it = std::find_if(templates->begin(), templates->end(), [&](const Template& t) {
    return t.handler == handler && t.data == data && t.ret_via_stack == ret_via_stack && t.at_call_boundary == at_call_boundary;
  });
  if (it == templates->end()) {
    std::vector<std::uint8_t> code = BPFVM_TRY(assemble_state_wrapper(kStandIn, handler, data, ret_via_stack, at_call_boundary));
    std::uint8_t needle[8];
    std::memcpy(needle, &kStandIn, 8);
    const auto found = std::search(code.begin(), code.end(), std::begin(needle), std::end(needle));
    if (found == code.end() || std::search(found + 1, code.end(), std::begin(needle), std::end(needle)) != code.end()) {
      return assemble_state_wrapper(rip, handler, data, ret_via_stack, at_call_boundary);  // (never: one mov)
    }
    const auto at = static_cast<std::size_t>(found - code.begin());
    templates->push_back({handler, data, ret_via_stack, at_call_boundary, std::move(code), at});
    it = templates->end() - 1;
  }
  std::vector<std::uint8_t> out = it->code;
  std::memcpy(out.data() + it->rip_at, &rip, 8);
  return out;
}

// ---- relocating the displaced instructions ----------------------------------------------------------

void put_abs_jump(std::vector<std::uint8_t>& out, std::uint64_t target) {  // jmp qword [rip+0]; dq target
  for (std::uint8_t b : {0xff, 0x25, 0, 0, 0, 0}) out.push_back(b);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(target >> (8 * i)));
}


bool decode(const ZydisDecoder& dec, std::uintptr_t at, std::size_t avail, Decoded& d) {
  return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, reinterpret_cast<const void*>(at), std::min<std::size_t>(avail, 15),
                                             &d.insn, d.ops));
}

bool is_branch(const Decoded& d) {
  const auto cat = d.insn.meta.category;
  return (cat == ZYDIS_CATEGORY_COND_BR || cat == ZYDIS_CATEGORY_UNCOND_BR || cat == ZYDIS_CATEGORY_CALL) &&
         d.insn.operand_count_visible > 0 && d.ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && d.ops[0].imm.is_relative;
}


// Moves the instructions from `from` on, at least `min_bytes` of them, to `dest`, followed by a jump back.
// Pushes `address` as a return address without touching the flags: lea rsp,[rsp-8]; mov dword [rsp],
// lo; mov dword [rsp+4], hi.
void put_push_address(std::vector<std::uint8_t>& out, std::uint64_t address) {
  for (std::uint8_t b : {0x48, 0x8d, 0x64, 0x24, 0xf8, 0xc7, 0x04, 0x24}) out.push_back(b);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(address >> (8 * i)));
  for (std::uint8_t b : {0xc7, 0x44, 0x24, 0x04}) out.push_back(b);
  for (int i = 4; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(address >> (8 * i)));
}

Result<Relocation> relocate(const ZydisDecoder& dec, std::uintptr_t from, std::uintptr_t limit, std::uintptr_t dest,
                            std::size_t min_bytes, bool calls_return_in_place) {
  Relocation r;
  std::size_t off = 0;
  std::vector<std::uint64_t> targets;  // of the displaced branches
  while (off < min_bytes) {
    const std::uintptr_t at = from + off;
    if (at >= limit) {
      return make_error(Errc::kNotSupported, "the function is {} bytes with its padding, shorter than a {}-byte jump",
                        limit - from, kJmpSize);
    }
    Decoded d;
    if (!decode(dec, at, limit - at, d)) {
      return make_error(Errc::kNotSupported, "cannot decode the instruction at {:#x}", at);
    }
    const std::size_t len = d.insn.length;
    const std::uintptr_t next = at + len;
    std::uintptr_t new_at = dest + r.code.size();
    // A call moved out of the code would return into the trampoline, where the unwinder finds no frame
    // information (an exception through it terminates the program) and a debugger no function. Where
    // the call is the last instruction moved, the callee returns to the original code right after it
    // instead, which is where the trampoline would have jumped back to anyway.
    const bool is_call = d.insn.meta.category == ZYDIS_CATEGORY_CALL;
    if (is_call && calls_return_in_place) {
      if (off + len < min_bytes) {
        return make_error(Errc::kNotSupported, "the call at {:#x} would have to be moved with instructions after it", at);
      }
      put_push_address(r.code, next);
      new_at = dest + r.code.size();
    }
    if (is_branch(d)) {
      const auto m = d.insn.mnemonic;
      if (m == ZYDIS_MNEMONIC_LOOP || m == ZYDIS_MNEMONIC_LOOPE || m == ZYDIS_MNEMONIC_LOOPNE ||
          m == ZYDIS_MNEMONIC_JRCXZ || m == ZYDIS_MNEMONIC_JECXZ) {
        return make_error(Errc::kNotSupported, "a loop/jrcxz branch at {:#x} cannot be moved", at);
      }
      ZyanU64 target = 0;
      ZydisCalcAbsoluteAddress(&d.insn, &d.ops[0], at, &target);
      targets.push_back(target);
      if (is_call && calls_return_in_place) {  // its return address pushed above: a jump
        put_abs_jump(r.code, target);
      } else if (is_call) {  // call [rip+2]; jmp +8; dq target
        for (std::uint8_t b : {0xff, 0x15, 2, 0, 0, 0, 0xeb, 8}) r.code.push_back(b);
        for (int i = 0; i < 8; ++i) r.code.push_back(static_cast<std::uint8_t>(target >> (8 * i)));
      } else if (d.insn.meta.category == ZYDIS_CATEGORY_UNCOND_BR) {
        put_abs_jump(r.code, target);
      } else {  // jcc: the inverse condition over an absolute jump
        const auto* raw = reinterpret_cast<const std::uint8_t*>(at);
        std::size_t p = 0;
        while (p < len && (raw[p] == 0x2e || raw[p] == 0x3e || raw[p] == 0xf2)) ++p;  // branch hints, bnd
        std::uint8_t cc;
        if (raw[p] >= 0x70 && raw[p] <= 0x7f) cc = raw[p] & 0xf;
        else if (raw[p] == 0x0f && raw[p + 1] >= 0x80 && raw[p + 1] <= 0x8f) cc = raw[p + 1] & 0xf;
        else return make_error(Errc::kNotSupported, "an unusual conditional branch at {:#x}", at);
        r.code.push_back(static_cast<std::uint8_t>(0x70 | (cc ^ 1)));
        r.code.push_back(14);
        put_abs_jump(r.code, target);
      }
    } else {
      const auto* raw = reinterpret_cast<const std::uint8_t*>(at);
      const std::size_t start = r.code.size();
      r.code.insert(r.code.end(), raw, raw + len);
      if (is_call && calls_return_in_place) {  // an indirect call (ff /2) becomes the jump ff /4
        if (d.insn.opcode != 0xff || !(d.insn.attributes & ZYDIS_ATTRIB_HAS_MODRM) || d.insn.raw.modrm.reg != 2) {
          return make_error(Errc::kNotSupported, "an unusual call at {:#x} cannot be moved", at);
        }
        std::uint8_t& modrm = r.code[start + d.insn.raw.modrm.offset];
        modrm = static_cast<std::uint8_t>((modrm & ~0x38) | (4 << 3));
      }
      if (d.insn.attributes & ZYDIS_ATTRIB_IS_RELATIVE) {  // a rip-relative memory operand
        if (d.insn.raw.disp.size != 32) {
          return make_error(Errc::kNotSupported, "an unusual rip-relative operand at {:#x}", at);
        }
        std::int32_t disp;
        std::memcpy(&disp, raw + d.insn.raw.disp.offset, 4);
        const std::uint64_t target = next + static_cast<std::int64_t>(disp);
        const std::int64_t moved = static_cast<std::int64_t>(target - (new_at + len));
        if (moved != static_cast<std::int32_t>(moved)) {
          return make_error(Errc::kNotSupported, "the rip-relative operand at {:#x} is out of the trampoline's reach", at);
        }
        const std::int32_t nd = static_cast<std::int32_t>(moved);
        std::memcpy(r.code.data() + start + d.insn.raw.disp.offset, &nd, 4);
      }
    }
    off += len;
  }
  for (const std::uint64_t t : targets) {
    if (t > from && t < from + off) {
      return make_error(Errc::kNotSupported, "a displaced branch targets the bytes the jump replaces ({:#x})", t);
    }
  }
  r.displaced = off;
  put_abs_jump(r.code, from + off);
  return r;
}

// Whether any branch of the function [start, end) lands inside (from, from + n), and whether `from` is
// on an instruction boundary of its linear decoding.
Result<void> check_function(const ZydisDecoder& dec, std::uintptr_t start, std::uintptr_t end, std::uintptr_t from,
                            std::size_t n) {
  bool boundary = from == start;
  for (std::uintptr_t at = start; at < end;) {
    Decoded d;
    if (!decode(dec, at, end - at, d)) { ++at; continue; }  // data in code: skip a byte
    if (at == from) boundary = true;
    if (is_branch(d)) {
      ZyanU64 target = 0;
      ZydisCalcAbsoluteAddress(&d.insn, &d.ops[0], at, &target);
      if (target > from && target < from + n) {
        return make_error(Errc::kNotSupported, "the branch at {:#x} lands inside the {} bytes a jump would replace",
                          at, n);
      }
    }
    at += d.insn.length;
  }
  if (!boundary) return make_error(Errc::kInvalid, "{:#x} is not at an instruction boundary of its function", from);
  return {};
}

// ---- return probes --------------------------------------------------------------------------------

struct PendingReturn {
  std::uintptr_t slot;  // where the return address was (rsp at the function's entry)
  std::uint64_t original;
  ProbeHandler handler;
  void* data;
};
constexpr int kMaxPending = 64;  // the kernel's MAX_URETPROBE_DEPTH
struct ReturnStack {
  int depth = 0;
  PendingReturn entries[kMaxPending];
};
// Mapped by a raw syscall at a thread's first uretprobe hit (in TLS it would weigh on every thread
// the process creates; from malloc, it would recurse when malloc is the probed function). A key's
// destructor unmaps it when the thread ends.
__attribute__((tls_model("initial-exec"))) thread_local ReturnStack* t_returns = nullptr;
pthread_key_t g_returns_key;

void free_returns(void* p) {
  t_returns = nullptr;
  static_cast<ReturnStack*>(p)->~ReturnStack();
  const std::uint64_t args[6] = {reinterpret_cast<std::uint64_t>(p), sizeof(ReturnStack)};
  detail::memory_syscall(SYS_munmap, args);
}

ReturnStack* returns(bool create) {
  if (!t_returns && create) {
    static const bool keyed = pthread_key_create(&g_returns_key, free_returns) == 0;
    const std::int64_t r = sys(SYS_mmap, 0, sizeof(ReturnStack), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0);
    if (r < 0 && r > -4096) return nullptr;
    t_returns = new (reinterpret_cast<void*>(r)) ReturnStack;
    if (keyed) pthread_setspecific(g_returns_key, t_returns);
  }
  return t_returns;
}

void return_dispatch(PtRegs* regs, void*) {
  ReturnStack* stack = returns(false);
  const std::uintptr_t slot = regs->rsp - 8;
  // Frames below this one that never returned (longjmp, an exception) are dropped.
  while (stack && stack->depth > 0 && stack->entries[stack->depth - 1].slot < slot) --stack->depth;
  if (!stack || stack->depth == 0 || stack->entries[stack->depth - 1].slot != slot) {
    std::fprintf(stderr, "bpfvm agent: a probed function returned through a frame it does not know (rsp %#lx)\n",
                 static_cast<unsigned long>(regs->rsp));
    std::abort();
  }
  const PendingReturn e = stack->entries[--stack->depth];
  regs->rip = e.original;
  *reinterpret_cast<std::uint64_t*>(slot) = e.original;  // where the trampoline's `ret` resumes
  e.handler(regs, e.data);
}

// Made at the first call (a function-local static: later calls read a guard byte, where std::call_once
// set two thread-locals through __tls_get_addr and called pthread_once on every uretprobe hit).
std::uintptr_t return_trampoline() {
  static const std::uintptr_t at = []() -> std::uintptr_t {
    auto code = state_wrapper(0, return_dispatch, nullptr, true, true);
    if (!code) return 0;
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || code->size() > 4096) return 0;
    std::memcpy(p, code->data(), code->size());
    ::mprotect(p, 4096, PROT_READ | PROT_EXEC);
    return reinterpret_cast<std::uintptr_t>(p);
  }();
  return at;
}

// Threads of this process other than the caller and the agent's own ("bpfvm-agent"): threads that may be
// executing the code being patched.
BPFVM_AGENT_FORKED std::atomic<bool> g_watcher_parked{false};  // (a fork clears it: forked.hpp)
std::atomic<std::uint32_t> g_gate{0};

void close_gate() { g_gate.fetch_add(1, std::memory_order_seq_cst); }
void open_gate() {
  if (g_gate.fetch_sub(1, std::memory_order_seq_cst) == 1) os::futex_wake_all(g_gate);
}

int other_threads() {
  const pid_t self = static_cast<pid_t>(::gettid());
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return 1;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const pid_t tid = static_cast<pid_t>(std::atol(e->d_name));
    if (tid == self) continue;
    char path[64], comm[32] = {};
    std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    if (FILE* f = std::fopen(path, "re")) {
      if (!std::fgets(comm, sizeof comm, f)) comm[0] = 0;
      std::fclose(f);
    }
    // The watcher counts unless it is parked behind a closed gate (it cannot leave while the gate is
    // closed, and is in none of the code being patched).
    const bool parked = g_gate.load(std::memory_order_seq_cst) != 0 && g_watcher_parked.load(std::memory_order_seq_cst);
    if (std::strncmp(comm, "bpfvm-agent", 11) != 0 || !parked) ++n;
  }
  ::closedir(d);
  return n;
}

// Five bytes of padding (no function's code) within a short jump's reach of `from` + 2, not used yet.
std::uintptr_t find_island(const PatchSite& site) {
  const Patches& p = patches();
  if (const auto it = p.island_of.find(site.address); it != p.island_of.end()) return it->second;
  if (!site.func_start || !site.func_size) return 0;
  auto free_at = [&p](std::uintptr_t a) {
    for (const auto& [lo, hi] : p.islands) {
      if (a < hi && a + kJmpSize > lo) return false;
    }
    return true;
  };
  auto reach = [&](std::uintptr_t a) {
    const std::int64_t d = static_cast<std::int64_t>(a - (site.address + 2));
    return d >= -128 && d <= 127;
  };
  // Before the function, nearest first, then after it.
  for (std::uintptr_t a = site.func_start - kJmpSize; site.func_pad_before >= kJmpSize &&
                                                      a >= site.func_start - site.func_pad_before && reach(a); --a) {
    if (free_at(a)) return a;
  }
  const std::uintptr_t end = site.func_start + site.func_size;
  for (std::uintptr_t a = end; a + kJmpSize <= end + site.func_slack && reach(a); ++a) {
    if (free_at(a)) return a;
  }
  return 0;
}

// Writes code no thread executes (padding), making the page writable for the copy.
Result<void> write_unexecuted(std::uintptr_t address, const std::uint8_t* bytes, std::size_t size) {
  const int prot = protection_of(address);
  if (prot < 0) return make_error(Errc::kFault, "{:#x} is not mapped", address);
  const std::uintptr_t page = address & ~std::uintptr_t{4095};
  const std::size_t len = ((address + size + 4095) & ~std::uintptr_t{4095}) - page;
  if (!(prot & PROT_WRITE) && ::mprotect(reinterpret_cast<void*>(page), len, prot | PROT_WRITE) != 0) {
    return make_error(Errc::kPermission, "cannot make the code at {:#x} writable: {}", address, std::strerror(errno));
  }
  std::memcpy(reinterpret_cast<void*>(address), bytes, size);
  if (!(prot & PROT_WRITE)) ::mprotect(reinterpret_cast<void*>(page), len, prot);
  return {};
}


// ---- int3 probes ----------------------------------------------------------------------------------

// An int3 probe: the address of its int3, what to call, and where the thread resumes (the instruction
// the int3 replaced, relocated, then a jump back). Entries are never freed or reused for another
// address: a thread may take the trap of a probe that is being removed, and must still resume right.
struct TrapSite {
  std::atomic<std::uintptr_t> address{0};
  std::atomic<bool> active{false};
  ProbeHandler handler = nullptr;
  void* data = nullptr;
  std::uintptr_t resume = 0;
};
constexpr std::size_t kMaxTraps = 4096;
struct Traps {
  TrapSite sites[kMaxTraps];
  std::atomic<std::size_t> count{0};
  struct sigaction previous {};  // the process's SIGTRAP disposition before the agent's
};
std::atomic<Traps*> g_traps{nullptr};  // made with the first int3 probe, never destroyed

// A SIGTRAP that is no probe's: what the process's own disposition would have done with it.
void trap_not_ours(int sig, siginfo_t* info, void* context, const struct sigaction& previous) {
  report_delivery(sig, info, {reinterpret_cast<std::uint64_t>(previous.sa_handler), static_cast<std::uint64_t>(previous.sa_flags)});
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(sig, info, context);
    return;
  }
  if (previous.sa_handler == SIG_IGN && info->si_code != SI_KERNEL) return;  // an ignored kill -TRAP
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  // The default action (an int3 trap is never ignored): the process dies of SIGTRAP, as without the agent.
  std::uint64_t was[4];
  set_kernel_action(SIGTRAP, reinterpret_cast<std::uint64_t>(SIG_DFL), 0, was);  // the agent's own, not interposed
  ::raise(SIGTRAP);
}

void on_sigtrap(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  auto* uc = static_cast<ucontext_t*>(context);
  greg_t* g = uc->uc_mcontext.gregs;
  Traps* traps = g_traps.load(std::memory_order_acquire);
  const std::uintptr_t at = static_cast<std::uintptr_t>(g[REG_RIP]) - 1;
  TrapSite* site = nullptr;
  if (traps && info->si_code == SI_KERNEL) {
    const std::size_t n = traps->count.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
      if (traps->sites[i].address.load(std::memory_order_relaxed) == at) {
        site = &traps->sites[i];
        break;
      }
    }
  }
  if (!site) {
    if (traps) trap_not_ours(sig, info, context, traps->previous);
    errno = saved_errno;
    return;
  }
  if (!site->active.load(std::memory_order_acquire)) {
    g[REG_RIP] = static_cast<greg_t>(at);  // removed meanwhile: the original byte is back, run it
    errno = saved_errno;
    return;
  }
  // pt_regs as the kernel's uprobe fills it: the registers at the probed instruction, orig_ax -1.
  PtRegs regs{};
  regs.r15 = g[REG_R15], regs.r14 = g[REG_R14], regs.r13 = g[REG_R13], regs.r12 = g[REG_R12];
  regs.rbp = g[REG_RBP], regs.rbx = g[REG_RBX], regs.r11 = g[REG_R11], regs.r10 = g[REG_R10];
  regs.r9 = g[REG_R9], regs.r8 = g[REG_R8], regs.rax = g[REG_RAX], regs.rcx = g[REG_RCX];
  regs.rdx = g[REG_RDX], regs.rsi = g[REG_RSI], regs.rdi = g[REG_RDI];
  regs.orig_rax = ~std::uint64_t{0};
  regs.rip = at;
  regs.cs = static_cast<std::uint64_t>(g[REG_CSGSFS]) & 0xffff;
  regs.eflags = g[REG_EFL];
  regs.rsp = g[REG_RSP];
  regs.ss = 0x2b;  // __USER_DS
  site->handler(&regs, site->data);
  g[REG_RIP] = static_cast<greg_t>(site->resume);
  errno = saved_errno;
}

// The table, and the agent's SIGTRAP handler in place (once; the caller holds g_chunks_mutex).
Result<Traps*> trap_table() {
  if (Traps* t = g_traps.load(std::memory_order_acquire)) return t;
  auto* t = new (std::nothrow) Traps;
  if (!t) return make_error(Errc::kNoMemory, "no memory for the int3 probes' table");
  // SA_NODEFER: a trap inside the handler (a probed function a helper calls) must not find SIGTRAP
  // blocked, which makes the kernel kill the process; it is a miss instead. Set by the agent's own
  // syscall (the process's rt_sigaction may be interposed: signals.hpp), and published after it is in
  // place: from then on the process's rt_sigaction calls for SIGTRAP are its own (trap_action).
  std::uint64_t was[4] = {};
  if (const std::int64_t r = set_kernel_action(SIGTRAP, reinterpret_cast<std::uint64_t>(&on_sigtrap),
                                               SA_SIGINFO | SA_NODEFER | SA_RESTART, was);
      r != 0) {
    delete t;
    return make_error(Errc::kIo, "cannot install the SIGTRAP handler of int3 probes: {}", std::strerror(static_cast<int>(-r)));
  }
  process_action(SIGTRAP, was);  // the process's own, where the signal dispatcher stood in
  t->previous.sa_handler = reinterpret_cast<void (*)(int)>(was[0]);
  t->previous.sa_flags = static_cast<int>(was[1]);
  t->previous.sa_restorer = reinterpret_cast<void (*)()>(was[2]);
  std::memcpy(&t->previous.sa_mask, &was[3], 8);
  g_traps.store(t, std::memory_order_release);
  return t;
}

bool trap_action(const std::uint64_t* set, std::uint64_t* old) {
  Traps* t = g_traps.load(std::memory_order_acquire);
  if (!t) return false;
  if (old) {
    old[0] = reinterpret_cast<std::uint64_t>(t->previous.sa_handler);
    old[1] = static_cast<std::uint64_t>(static_cast<unsigned>(t->previous.sa_flags));
    old[2] = reinterpret_cast<std::uint64_t>(t->previous.sa_restorer);
    std::memcpy(&old[3], &t->previous.sa_mask, 8);
  }
  if (set) {
    struct sigaction now {};
    now.sa_handler = reinterpret_cast<void (*)(int)>(set[0]);
    now.sa_flags = static_cast<int>(set[1]);
    now.sa_restorer = reinterpret_cast<void (*)()>(set[2]);
    std::memcpy(&now.sa_mask, &set[3], 8);
    t->previous = now;
  }
  return true;
}

}  // namespace detail

using namespace detail;

Result<void> patch_code(std::uintptr_t address, const std::uint8_t* bytes, std::size_t size) {
  std::uintptr_t block = address & ~std::uintptr_t{7};
  std::size_t width = 8;
  if (address + size > block + 8) {
    block = address & ~std::uintptr_t{15};
    width = 16;
    if (address + size > block + 16) {
      return make_error(Errc::kNotSupported, "the {} bytes at {:#x} cross a 16-byte boundary: no atomic write covers them",
                        size, address);
    }
  }
  const int prot = protection_of(block);
  if (prot < 0) return make_error(Errc::kFault, "{:#x} is not mapped", address);
  const std::uintptr_t page = block & ~std::uintptr_t{4095};
  const std::size_t len = ((block + width + 4095) & ~std::uintptr_t{4095}) - page;
  if (!(prot & PROT_WRITE) &&
      ::mprotect(reinterpret_cast<void*>(page), len, prot | PROT_WRITE) != 0) {
    return make_error(Errc::kPermission, "cannot make the code at {:#x} writable: {}", address, std::strerror(errno));
  }
  bool ok;
  if (width == 8) {
    auto* word = reinterpret_cast<std::uint64_t*>(block);
    std::uint64_t old = __atomic_load_n(word, __ATOMIC_ACQUIRE), v;
    do {
      v = old;
      std::memcpy(reinterpret_cast<std::uint8_t*>(&v) + (address - block), bytes, size);
    } while (!__atomic_compare_exchange_n(word, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
    ok = true;
  } else {
    std::uint8_t old[16], v[16];
    do {
      std::memcpy(old, reinterpret_cast<const void*>(block), 16);
      std::memcpy(v, old, 16);
      std::memcpy(v + (address - block), bytes, size);
    } while (!(ok = cas16(reinterpret_cast<void*>(block), old, v)));
  }
  if (!(prot & PROT_WRITE)) ::mprotect(reinterpret_cast<void*>(page), len, prot);
  __builtin___clear_cache(reinterpret_cast<char*>(address), reinterpret_cast<char*>(address + size));
  return {};
}

namespace {

// Whether a jump's failure leaves an int3 to try.
bool trap_may_do(const Error& e) { return e.code() == Errc::kBusy || e.code() == Errc::kNotSupported; }

}  // namespace

// An int3 at `site` (see hook.hpp); the caller holds g_chunks_mutex.
Result<std::unique_ptr<Hook>> Hook::install_trap(const PatchSite& site, ProbeHandler handler, void* data) {
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  Traps* traps = BPFVM_TRY(trap_table());
  const std::uintptr_t from = site.address;
  const std::uintptr_t limit =
      site.func_start && site.func_size ? site.func_start + site.func_size + site.func_slack : from + 32;
  if (site.func_start && site.func_size) {
    BPFVM_TRY(check_function(dec, site.func_start, site.func_start + site.func_size, from, 1));  // a boundary
  }
  TrapSite* slot = nullptr;
  const std::size_t n = traps->count.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n && !slot; ++i) {
    if (traps->sites[i].address.load(std::memory_order_relaxed) == from) slot = &traps->sites[i];
  }
  if (!slot) {
    if (n == kMaxTraps) return make_error(Errc::kNoSpace, "{} int3 probes are placed already, the most there may be", n);
    const std::uintptr_t resume = allocate_near(from, 64);  // a moved call: 20 + 15 bytes, and the jump back
    if (!resume) return make_error(Errc::kNoMemory, "no free memory within 2 GiB of {:#x} for a trampoline", from);
    Relocation rel = BPFVM_TRY(relocate(dec, from, limit, resume, 1, true));
    BPFVM_TRY(write_trampoline(resume, rel.code));
    slot = &traps->sites[n];
    slot->resume = resume;
    slot->handler = handler;
    slot->data = data;
    slot->address.store(from, std::memory_order_relaxed);
    traps->count.store(n + 1, std::memory_order_release);
  } else if (slot->active.load(std::memory_order_acquire)) {
    return make_error(Errc::kBusy, "{:#x} has an int3 probe already", from);
  } else {
    slot->handler = handler;
    slot->data = data;
  }
  std::unique_ptr<Hook> hook(new Hook);
  hook->address_ = from;
  hook->original_size_ = 1;
  hook->patch_size_ = 1;
  hook->patched_[0] = 0xcc;
  std::memcpy(hook->original_, reinterpret_cast<const void*>(from), 1);
  hook->trap_ = slot;
  slot->active.store(true, std::memory_order_release);
  if (auto r = patch_code(from, hook->patched_, 1); !r) {
    slot->active.store(false, std::memory_order_release);
    return std::move(r).error();
  }
  hook->installed_ = true;
  return hook;
}

Result<std::unique_ptr<Hook>> Hook::install(const PatchSite& site, ProbeHandler handler, void* data) {
  if (protection_of(site.address) < 0 || !(protection_of(site.address) & PROT_EXEC)) {
    return make_error(Errc::kFault, "{:#x} is not in executable memory", site.address);
  }
  if (!site.trap) {
    auto jump = install_jump(site, handler, data);
    if (jump || !trap_may_do(jump.error())) return jump;
    std::lock_guard lock(g_chunks_mutex);
    auto trap = install_trap(site, handler, data);
    if (!trap) return make_error(trap.error().code(), "{} (and no jump: {})", trap.error().to_string(), jump.error().to_string());
    return trap;
  }
  std::lock_guard lock(g_chunks_mutex);
  return install_trap(site, handler, data);
}

Result<std::unique_ptr<Hook>> Hook::install_jump(const PatchSite& site, ProbeHandler handler, void* data) {
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  const std::uintptr_t from = site.address;
  // How far the displaced instructions may reach: the function and its padding; unknown, the next 32.
  const std::uintptr_t limit =
      site.func_start && site.func_size ? site.func_start + site.func_size + site.func_slack : from + 32;
  if (protection_of(from) < 0 || !(protection_of(from) & PROT_EXEC)) {
    return make_error(Errc::kFault, "{:#x} is not in executable memory", from);
  }
  const bool entry = site.func_start != 0 && site.func_start == from;
  auto wrapper = BPFVM_TRY(state_wrapper(from, handler, data, false, entry));
  std::lock_guard lock(g_chunks_mutex);
  // The relocated code's size is known once it is made; a trampoline is at most the wrapper, five
  // displaced instructions made absolute (22 bytes each) and the jump back.
  const std::size_t max_size = wrapper.size() + 5 * 22 + 14;
  const std::uintptr_t tramp = allocate_near(from, max_size);
  if (!tramp) return make_error(Errc::kNoMemory, "no free memory within 2 GiB of {:#x} for a trampoline", from);
  // How the jump gets in, safe for threads running through the code meanwhile (every thread is between
  // two instructions, and one store changes what one instruction boundary leads to):
  //  - the first instruction is 5 bytes or more: a jmp rel32 over it alone;
  //  - it is 2 bytes or more and padding within 127 bytes can take a jmp rel32: a jmp rel8 over it alone,
  //    to that island (Debian's code starts functions with the 4-byte endbr64, and aligns them);
  //  - else the jump covers several instructions, and a thread stopped between two of them would resume
  //    inside the jump: only done while no other thread runs (the agent's first links, before main).
  Decoded first;
  if (!decode(dec, from, limit - from, first)) return make_error(Errc::kNotSupported, "cannot decode the instruction at {:#x}", from);
  std::uintptr_t island = 0;
  std::size_t min_bytes = kJmpSize;
  if (first.insn.length >= kJmpSize) {
    min_bytes = 1;
  } else if (first.insn.length >= 2 && (island = find_island(site)) != 0) {
    min_bytes = 1;
  } else if (const int others = other_threads(); others > 0) {
    return make_error(Errc::kBusy,
                      "the jump would cover several instructions at {:#x} (the first is {} bytes, no padding within "
                      "reach), which is unsafe while {} other thread{} run{}", from, first.insn.length, others,
                      others == 1 ? "" : "s", others == 1 ? "s" : "");
  }
  Relocation rel = BPFVM_TRY(relocate(dec, from, limit, tramp + wrapper.size(), min_bytes, true));
  if (site.func_start && site.func_size) {
    BPFVM_TRY(check_function(dec, site.func_start, site.func_start + site.func_size, from, rel.displaced));
  }
  wrapper.insert(wrapper.end(), rel.code.begin(), rel.code.end());
  BPFVM_TRY(write_trampoline(tramp, wrapper));

  std::unique_ptr<Hook> hook(new Hook);
  hook->address_ = from;
  hook->original_size_ = rel.displaced;
  auto jmp32 = [](std::uint8_t* out, std::uintptr_t at, std::uintptr_t to) {
    out[0] = 0xe9;
    const std::int32_t rel32 = static_cast<std::int32_t>(static_cast<std::int64_t>(to - (at + kJmpSize)));
    std::memcpy(out + 1, &rel32, 4);
  };
  if (island) {
    std::uint8_t island_jump[kJmpSize];
    jmp32(island_jump, island, tramp);
    BPFVM_TRY(write_unexecuted(island, island_jump, kJmpSize));
    if (patches().island_of.emplace(from, island).second) patches().islands.emplace_back(island, island + kJmpSize);
    hook->patch_size_ = 2;
    hook->patched_[0] = 0xeb;
    hook->patched_[1] = static_cast<std::uint8_t>(static_cast<std::int8_t>(static_cast<std::int64_t>(island - (from + 2))));
  } else {
    hook->patch_size_ = kJmpSize;
    jmp32(hook->patched_, from, tramp);
  }
  std::memcpy(hook->original_, reinterpret_cast<const void*>(from), hook->patch_size_);
  BPFVM_TRY(patch_code(from, hook->patched_, hook->patch_size_));
  hook->installed_ = true;
  return hook;
}

Result<void> Hook::remove() {
  if (!installed_) return {};
  BPFVM_TRY(patch_code(address_, original_, patch_size_));
  // A thread that took this int3 before the byte went back still finds its entry, inactive: it runs
  // the original instruction.
  if (trap_) static_cast<TrapSite*>(trap_)->active.store(false, std::memory_order_release);
  installed_ = false;
  return {};
}

Hook::~Hook() { (void)remove(); }

namespace {

// An exception leaves frames through the unwinder, which finds each caller by the return address in
// the stack: where a return probe put its trampoline's address there, the unwinder finds no unwind
// information and the program terminates (as it does under the kernel's uretprobes). So when unwinding
// starts, this thread's pending returns get their original addresses back (unarmed), and when C++
// catches (__cxa_begin_catch), those of frames still live (above the catching frame) are armed again:
// a caught exception then costs no return event but those of the frames it left, as a longjmp.
void unarm_returns(PtRegs* regs, void*) {
  ReturnStack* s = returns(false);
  if (!s) return;
  const std::uintptr_t tramp = return_trampoline();
  for (int i = 0; i < s->depth; ++i) {
    if (s->entries[i].slot < regs->rsp) continue;  // a frame left earlier (longjmp): its memory is not its
    auto* slot = reinterpret_cast<std::uint64_t*>(s->entries[i].slot);
    if (*slot == tramp) *slot = s->entries[i].original;
  }
}

void rearm_returns(PtRegs* regs, void*) {
  ReturnStack* s = returns(false);
  if (!s) return;
  while (s->depth > 0 && s->entries[s->depth - 1].slot < regs->rsp) --s->depth;  // the frames unwound
  const std::uintptr_t tramp = return_trampoline();
  for (int i = 0; i < s->depth; ++i) {
    auto* slot = reinterpret_cast<std::uint64_t*>(s->entries[i].slot);
    if (*slot == s->entries[i].original) *slot = tramp;
  }
}

struct UnwindHooks {
  std::mutex mutex;
  std::map<std::uintptr_t, std::unique_ptr<Hook>> hooks;  // by address, kept for the process's life
};
UnwindHooks& unwind_hooks() {
  static UnwindHooks* h = new UnwindHooks;
  return *h;
}

}  // namespace

Result<void> guard_returns_from_unwinding() {
  UnwindHooks& u = unwind_hooks();
  std::lock_guard lock(u.mutex);
  struct Point {
    const char* name;
    ProbeHandler handler;
  };
  // libgcc's unwinder (every language's throw, rethrow, and pthread_exit/cancel's forced unwinding) and
  // libstdc++'s catch; each wherever the process has it (dlopen'ed later: the next call does it).
  static constexpr Point kPoints[] = {{"_Unwind_RaiseException", unarm_returns},
                                      {"_Unwind_Resume_or_Rethrow", unarm_returns},
                                      {"_Unwind_ForcedUnwind", unarm_returns},
                                      {"__cxa_begin_catch", rearm_returns}};
  for (const Point& p : kPoints) {
    void* fn = ::dlsym(RTLD_DEFAULT, p.name);
    if (!fn) continue;
    const auto at = reinterpret_cast<std::uintptr_t>(fn);
    if (u.hooks.count(at)) continue;
    PatchSite site;
    site.address = at;
    Dl_info info;
    void* extra = nullptr;
    if (::dladdr1(fn, &info, &extra, RTLD_DL_SYMENT) && extra && static_cast<const ElfW(Sym)*>(extra)->st_size) {
      const auto* sym = static_cast<const ElfW(Sym)*>(extra);
      site.func_start = at;
      site.func_size = sym->st_size;
    }
    auto hook = Hook::install(site, p.handler, nullptr);
    if (!hook) return std::move(hook).error().with_context(fmt::format("guarding return probes at {}", p.name));
    u.hooks.emplace(at, std::move(*hook));
  }
  return {};
}

bool hook_return(PtRegs* regs, ProbeHandler handler, void* data) {
  ReturnStack* stack = returns(true);
  if (!stack) return false;
  ReturnStack& s = *stack;
  const std::uintptr_t tramp = return_trampoline();
  if (!tramp) return false;
  // Drop frames that were left without returning (their slots are below this entry's).
  while (s.depth > 0 && s.entries[s.depth - 1].slot < regs->rsp) --s.depth;
  if (s.depth == kMaxPending) return false;
  auto* slot = reinterpret_cast<std::uint64_t*>(regs->rsp);
  s.entries[s.depth++] = {regs->rsp, *slot, handler, data};
  *slot = tramp;
  return true;
}

}  // namespace bpfvm::agent
