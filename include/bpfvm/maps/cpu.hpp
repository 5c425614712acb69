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

}  // namespace bpfvm::maps
