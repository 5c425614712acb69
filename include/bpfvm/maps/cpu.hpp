// "CPUs" for per-CPU maps: bpfvm's execution slots. There are as many as the host has possible CPUs
// (/sys/devices/system/cpu/possible, what libbpf_num_possible_cpus() reads), so that user space sees
// per-CPU values laid out exactly as under the kernel: round_up(value_size, 8) bytes per CPU. Each thread
// that runs programs gets a slot, round robin; threads beyond the count share slots.
#pragma once

#include <cstdint>

namespace bpfvm::maps {

std::uint32_t possible_cpus();
// The calling thread's slot, in [0, possible_cpus()).
std::uint32_t this_cpu();
// Where this_cpu() keeps the calling thread's slot + 1 (0 until the thread's first call): an offset from
// the thread pointer (the %fs base on x86-64), the same in every thread, so that JIT code can read the
// slot with one load. The variable is initial-exec TLS, also readable where the agent runs probes.
std::intptr_t this_cpu_tls_offset();

}  // namespace bpfvm::maps
