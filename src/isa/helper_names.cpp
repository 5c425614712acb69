#include "bpfvm/isa/helper_names.hpp"

#include <linux/bpf.h>

#include <array>

namespace bpfvm::isa {

namespace {
// __BPF_FUNC_MAPPER lists the helpers in id order; BPF_FUNC_<name> is each one's id.
// Linux 6.1 writes "FN(name)," with the comma in the list; 6.2+ expands FN(name) through its own
// apply macro, also adding the comma. Either way FN must not add one.
#define BPFVM_HELPER_NAME(name, ...) std::string_view{"bpf_" #name}
constexpr std::array kNames = {__BPF_FUNC_MAPPER(BPFVM_HELPER_NAME)};
#undef BPFVM_HELPER_NAME
static_assert(kNames.size() == __BPF_FUNC_MAX_ID, "helper list and ids disagree");
static_assert(BPF_FUNC_trace_printk == 6 && BPF_FUNC_map_lookup_elem == 1);
}  // namespace

std::optional<std::string_view> helper_name(std::int32_t id) {
  if (id <= 0 || id >= static_cast<std::int32_t>(kNames.size())) return std::nullopt;
  return kNames[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> helper_id(std::string_view name) {
  if (!name.starts_with("bpf_")) {
    for (std::size_t i = 1; i < kNames.size(); ++i) {
      if (kNames[i].substr(4) == name) return static_cast<std::int32_t>(i);
    }
    return std::nullopt;
  }
  for (std::size_t i = 1; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<std::int32_t>(i);
  }
  return std::nullopt;
}

std::int32_t helper_id_limit() { return static_cast<std::int32_t>(kNames.size()); }

}  // namespace bpfvm::isa
