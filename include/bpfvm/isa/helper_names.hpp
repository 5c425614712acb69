// Names of the kernel's helper functions by id, as the disassembler prints them ("bpf_trace_printk").
// The table is generated at compile time from linux-libc-dev's <linux/bpf.h> (__BPF_FUNC_MAPPER), so
// the ids are the kernel's by construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bpfvm::isa {

// "bpf_map_lookup_elem" for 1; nullopt for 0 (unspec) and unknown ids.
std::optional<std::string_view> helper_name(std::int32_t id);

// The id of "bpf_map_lookup_elem" or "map_lookup_elem"; nullopt if no such helper.
std::optional<std::int32_t> helper_id(std::string_view name);

// One past the highest id known.
std::int32_t helper_id_limit();

}  // namespace bpfvm::isa
