#include "map_report.hpp"

#include <linux/bpf.h>

#include <bpf/btf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "bpfvm/base/hex.hpp"
#include "bpfvm/obj/btf_value.hpp"
#include "event_table.hpp"

namespace bpfvm::cli {

namespace {

bool is_integer(const obj::Btf* btf, std::uint32_t type_id, std::uint32_t size) {
  if (!btf || !type_id) return size == 4 || size == 8;
  const btf_type* t = btf__type_by_id(btf->get(), obj::btf_skip_qualifiers(*btf, type_id));
  return t && (btf_is_int(t) || btf_is_any_enum(t)) && t->size <= 8;
}

std::uint64_t load_uint(std::span<const std::uint8_t> data) {
  std::uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min<std::size_t>(data.size(), 8));
  return v;
}

std::string format_key(const runtime::Map& m, std::span<const std::uint8_t> key) {
  const obj::Btf* btf = m.btf() ? &m.btf()->btf() : nullptr;
  if (btf && m.btf_key_type_id()) {
    if (is_syscall_nr_type(*btf, m.btf_key_type_id())) return syscall_name_or_number(load_uint(key));
    const auto v = obj::btf_value(*btf, m.btf_key_type_id(), key);
    return v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (key.size() <= 8) return std::to_string(load_uint(key));
  return format_hex_bytes(key);
}

std::string format_value(const runtime::Map& m, std::span<const std::uint8_t> value) {
  const obj::Btf* btf = m.btf() ? &m.btf()->btf() : nullptr;
  if (btf && m.btf_value_type_id()) {
    const auto v = obj::btf_value(*btf, m.btf_value_type_id(), value);
    return v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (value.size() <= 8) return std::to_string(load_uint(value));
  return format_hex_bytes(value);
}

// bpftrace's power-of-1024 labels: 1K, 2M, ...
std::string size_label(std::uint64_t v) {
  static constexpr const char* kSuffix[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (v >= 1024 && v % 1024 == 0 && i < 6) {
    v /= 1024;
    ++i;
  }
  return fmt::format("{}{}", v, kSuffix[i]);
}

}  // namespace

void print_log2_hist(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& slots, std::FILE* out) {
  std::uint32_t lo = UINT32_MAX, hi = 0;
  std::uint64_t max = 0;
  for (const auto& [slot, count] : slots) {
    if (count == 0) continue;
    lo = std::min(lo, slot);
    hi = std::max(hi, slot);
    max = std::max(max, count);
  }
  if (max == 0) return;
  constexpr std::size_t kBar = 52;
  for (std::uint32_t s = lo; s <= hi && s < 65; ++s) {
    std::uint64_t count = 0;
    for (const auto& [slot, c] : slots) {
      if (slot == s) count += c;
    }
    std::string label;
    if (s == 0) label = "[0]";
    else if (s == 1) label = "[1]";
    else label = fmt::format("[{}, {})", size_label(1ull << (s - 1)), s >= 64 ? std::string("...") : size_label(1ull << s));
    const std::size_t n = static_cast<std::size_t>(count * kBar / max);
    fmt::print(out, "{:<16}{:>8} |{}{}|\n", label, count, std::string(n, '@'), std::string(kBar - n, ' '));
  }
}

void print_map_report(const std::vector<std::shared_ptr<runtime::Map>>& maps, std::FILE* out) {
  for (const auto& mp : maps) {
    const runtime::Map& m = *mp;
    const std::uint32_t type = m.def().type;
    // Global data (.bss, .data, .rodata) and maps that carry events or programs have nothing to report.
    if (m.name().find('.') != std::string::npos) continue;
    // libbpf's own maps (bpf/usdt.bpf.h's argument specs): the loader's, not the program's results.
    if (m.name().starts_with("__bpf_usdt")) continue;
    if (type != BPF_MAP_TYPE_HASH && type != BPF_MAP_TYPE_ARRAY && type != BPF_MAP_TYPE_LRU_HASH &&
        type != BPF_MAP_TYPE_PERCPU_HASH && type != BPF_MAP_TYPE_PERCPU_ARRAY && type != BPF_MAP_TYPE_LRU_PERCPU_HASH) {
      continue;
    }
    const bool percpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
                        type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const std::uint32_t ks = m.def().key_size, vs = m.def().value_size;
    const obj::Btf* btf = m.btf() ? &m.btf()->btf() : nullptr;
    const bool int_value = is_integer(btf, m.btf_value_type_id(), vs);
    std::vector<std::uint8_t> key(ks), next(ks), value(m.impl().user_value_size());
    struct Entry {
      std::vector<std::uint8_t> key, value;
      std::uint64_t number;
    };
    std::vector<Entry> entries;
    bool first = true;
    while (m.impl().next_key(first ? nullptr : key.data(), next.data())) {
      first = false;
      key = next;
      if (!m.impl().lookup(key.data(), value.data())) continue;
      std::uint64_t number = 0;
      std::vector<std::uint8_t> shown(value.begin(), value.begin() + vs);
      if (int_value) {
        // Per-CPU values: the sum over the slots, as bpftrace's count() and sum() show them.
        const std::size_t stride = percpu ? (vs + 7) / 8 * 8 : vs;
        for (std::size_t off = 0; off + vs <= value.size(); off += stride) {
          number += load_uint(std::span<const std::uint8_t>(value).subspan(off, vs));
          if (!percpu) break;
        }
        std::memcpy(shown.data(), &number, std::min<std::size_t>(vs, 8));
      }
      // Arrays have every slot: report the ones written.
      if ((type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY) &&
          std::all_of(shown.begin(), shown.end(), [](std::uint8_t b) { return b == 0; })) {
        continue;
      }
      entries.push_back({key, shown, number});
    }
    if (entries.empty()) continue;
    const bool hist = m.name().ends_with("hist") && int_value && ks <= 8 && is_integer(btf, m.btf_key_type_id(), ks);
    fmt::print(out, "\n");
    if (hist) {
      fmt::print(out, "@{}:\n", m.name());
      std::vector<std::pair<std::uint32_t, std::uint64_t>> slots;
      for (const auto& e : entries) slots.emplace_back(static_cast<std::uint32_t>(load_uint(e.key)), e.number);
      print_log2_hist(slots, out);
      continue;
    }
    if (int_value) {
      std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.number < b.number; });
    }
    for (const auto& e : entries) {
      fmt::print(out, "@{}[{}]: {}\n", m.name(), format_key(m, e.key), format_value(m, e.value));
    }
  }
  std::fflush(out);
}

}  // namespace bpfvm::cli
