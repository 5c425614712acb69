// The kernel's bpf_bprintf formatting, shared by trace_printk and snprintf: %d %i %u %x %X %c %s %p and
// %% with l/ll, flags, width and precision; no h, z or j modifiers. Private to src/helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bpfvm/base/call_context.hpp"

namespace bpfvm::helpers {

// nullopt for a format the kernel refuses (an unknown conversion, more conversions than arguments, a
// result longer than 1024 bytes).
std::optional<std::string> bprintf(std::string_view fmt, const std::uint64_t* args, int nargs, CallContext* ctx);

}  // namespace bpfvm::helpers
