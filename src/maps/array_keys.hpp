// get_next_key for array-like maps (array, percpu_array, array_of_maps, prog_array): indexes in order;
// no key or one out of range starts from 0; the last index ends with ENOENT. Private to src/maps.
#pragma once

#include <cstdint>
#include <cstring>

#include "bpfvm/base/result.hpp"

namespace bpfvm::maps {

inline Result<void> array_next_key(std::uint32_t max_entries, const void* key, void* next) {
  std::uint32_t index = 0, out = 0;
  if (key) std::memcpy(&index, key, 4);
  if (key && index < max_entries) {
    if (index + 1 == max_entries) return make_error(Errc::kNotFound, "no key after the last");
    out = index + 1;
  }
  std::memcpy(next, &out, 4);
  return {};
}

}  // namespace bpfvm::maps
