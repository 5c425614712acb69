// Fuzzes the verifier: any instructions, for any of a few program types with a few maps, must give a
// verdict (with an explanation and a log), never a crash, a hang or a sanitizer report. The first
// input byte picks the program type; the rest are instructions. Seed it with the verifier cases
// (make fuzz-verifier assembles tests/verifier/*.cases).
#include <linux/bpf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bpfvm/runtime/verifier_platform.hpp"
#include "bpfvm/verifier/verifier.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bpfvm;
  if (size < 1 + 8) return 0;
  static const std::uint32_t kTypes[] = {BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS,
                                         BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACEPOINT};
  const std::uint32_t type = kTypes[data[0] % std::size(kTypes)];
  std::vector<isa::RawInsn> insns((size - 1) / 8);
  std::memcpy(insns.data(), data + 1, insns.size() * 8);
  // The maps a case may name: map[idx:0..5].
  std::vector<verifier::MapInfo> maps(6);
  maps[0] = {BPF_MAP_TYPE_ARRAY, 4, 64, 1, false, -1, true, -1};
  maps[1] = {BPF_MAP_TYPE_HASH, 4, 16, 16, false, -1, false, -1};
  maps[2] = {BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, false, -1, false, -1};
  maps[3] = {BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, false, -1, false, -1};
  maps[4] = {BPF_MAP_TYPE_ARRAY, 4, 16, 1, true, 0, true, -1};
  maps[5] = {BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 4, false, -1, false, 1};
  const runtime::VerifierPlatform platform(type, maps);
  verifier::Rejection rejection;
  std::string log;
  verifier::VerifierOptions options;
  options.insn_limit = 20000;  // enough to reach every rule, small enough to stay fast
  options.rejection = &rejection;
  options.log_level = data[0] & 0x80 ? 2 : 0;
  options.log = options.log_level ? &log : nullptr;
  auto verdict = verifier::verify(insns, platform, options);
  if (!verdict) {
    const std::string text = verifier::explain(rejection, insns);
    (void)text;
  }
  return 0;
}
