// Checks of BPF_ANY / BPF_NOEXIST / BPF_EXIST / BPF_F_LOCK shared by the map types.
#pragma once

#include <linux/bpf.h>

#include <cstdint>

#include "bpfvm/base/result.hpp"

namespace bpfvm::maps {

inline Result<void> check_update_flags(std::uint64_t flags) {
  const std::uint64_t mode = flags & ~static_cast<std::uint64_t>(BPF_F_LOCK);
  if (mode > BPF_EXIST) return make_error(Errc::kInvalid, "update flags 0x{:x} are invalid", flags);
  if (flags & BPF_F_LOCK) return make_error(Errc::kInvalid, "BPF_F_LOCK needs a value with a bpf_spin_lock");  // handled by Map::update_locked
  return {};
}

// The kernel's check for an existing (or missing) element under BPF_NOEXIST / BPF_EXIST.
inline Result<void> check_existence(std::uint64_t flags, bool exists) {
  const std::uint64_t mode = flags & ~static_cast<std::uint64_t>(BPF_F_LOCK);
  if (mode == BPF_NOEXIST && exists) return make_error(Errc::kExists, "the key exists (BPF_NOEXIST)");
  if (mode == BPF_EXIST && !exists) return make_error(Errc::kNotFound, "the key does not exist (BPF_EXIST)");
  return {};
}

}  // namespace bpfvm::maps
