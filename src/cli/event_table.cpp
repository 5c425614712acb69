#include "event_table.hpp"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "bpfvm/attach/syscalls.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/obj/btf_value.hpp"
#include "bpfvm/obj/dwarf_types.hpp"

namespace bpfvm::cli {

bool is_syscall_nr_type(const obj::Btf& btf, std::uint32_t type_id) {
  // Through modifiers, down to the typedef's name.
  for (int depth = 0; depth < 8; ++depth) {
    const btf_type* t = btf__type_by_id(btf.get(), type_id);
    if (!t) return false;
    if (btf_is_typedef(t) && btf.type_name(type_id) == "bpfvm_syscall_nr_t") return true;
    if (!btf_is_mod(t) && !btf_is_typedef(t)) return false;
    type_id = t->type;
  }
  return false;
}

std::string syscall_name_or_number(std::uint64_t nr) {
  if (const attach::SyscallFormat* f = attach::syscall_by_nr(static_cast<int>(nr))) return std::string(f->name);
  return std::to_string(nr);
}

// The struct BPFVM_RECORD(struct T) names: the pointee of the global `__bpfvm_record`.
std::uint32_t record_struct(const obj::Btf& btf) {
  for (std::uint32_t id = 1; id < btf.type_count(); ++id) {
    const btf_type* t = btf__type_by_id(btf.get(), id);
    if (!t || !btf_is_var(t) || btf.type_name(id) != "__bpfvm_record") continue;
    const btf_type* ptr = btf__type_by_id(btf.get(), obj::btf_skip_qualifiers(btf, t->type));
    if (!ptr || !btf_is_ptr(ptr)) return 0;
    const std::uint32_t target = obj::btf_skip_qualifiers(btf, ptr->type);
    const btf_type* st = btf__type_by_id(btf.get(), target);
    return st && btf_is_struct(st) ? target : 0;
  }
  return 0;
}

void EventTable::append_cell(std::string& row, const Column& c, std::string_view text, bool last) {
  row += ' ';
  if (!last && std::any_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; })) {
    // (UTF-8: fmt pads by the text's display width)
    if (c.left) fmt::format_to(std::back_inserter(row), "{:<{}}", text, c.width);
    else fmt::format_to(std::back_inserter(row), "{:>{}}", text, c.width);
    return;
  }
  const std::size_t pad = last || text.size() >= c.width ? 0 : c.width - text.size();
  if (!c.left) row.append(pad, ' ');
  row += text;
  if (c.left) row.append(pad, ' ');
}

EventTable::EventTable(const obj::Btf* btf, std::string object, std::FILE* out)
    : btf_(btf), object_(std::move(object)), out_(out), start_(std::chrono::steady_clock::now()) {}

bool EventTable::choose_layout(std::size_t record_size) {
  const auto size = static_cast<std::int64_t>(record_size);
  std::uint32_t id = btf_ ? record_struct(*btf_) : 0;
  if (id && obj::btf_size(*btf_, id) > size) id = 0;
  if (!id && !object_.empty()) {
    // Perf samples are padded to 8 bytes: a struct up to 7 bytes shorter is the record too.
    auto found = obj::find_dwarf_record_struct(object_, record_size >= 7 ? record_size - 7 : 0, record_size);
    if (found && *found) {
      dwarf_btf_ = std::move((*found)->btf);
      btf_ = &*dwarf_btf_;
      id = (*found)->type_id;
    }
  }
  if (!btf_) return false;
  if (!id) id = obj::btf_find_struct(*btf_, "event");
  if (id && obj::btf_size(*btf_, id) > size) id = 0;
  if (!id) id = obj::btf_find_struct(*btf_, "", size);
  // Perf samples are padded to 8 bytes: a struct a few bytes shorter is the record too.
  for (std::int64_t pad = 1; !id && pad < 8 && size - pad > 0; ++pad) id = obj::btf_find_struct(*btf_, "", size - pad);
  if (!id) return false;
  struct_id_ = id;
  const btf_type* t = btf__type_by_id(btf_->get(), id);
  const btf_member* m = btf_members(t);
  for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    Column c;
    c.header = btf__name_by_offset(btf_->get(), m->name_off);
    std::transform(c.header.begin(), c.header.end(), c.header.begin(), [](unsigned char ch) { return std::toupper(ch); });
    c.type_id = m->type;
    c.offset = btf_member_bit_offset(t, i) / 8;
    c.size = static_cast<std::uint32_t>(std::max<std::int64_t>(obj::btf_size(*btf_, m->type), 0));
    c.syscall_name = is_syscall_nr_type(*btf_, m->type);
    const btf_type* mt = btf__type_by_id(btf_->get(), obj::btf_skip_qualifiers(*btf_, m->type));
    const bool text = mt && btf_is_array(mt);
    c.left = text || c.syscall_name;
    c.width = std::max<std::size_t>(c.header.size(), text ? std::min<std::size_t>(c.size, 16) : c.syscall_name ? 12 : 7);
    c.format.emplace(*btf_, c.type_id);
    columns_.push_back(std::move(c));
  }
  return !columns_.empty();
}

void EventTable::print(std::span<const std::uint8_t> record) {
  if (!decided_) {
    decided_ = true;
    choose_layout(record.size());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (columns_.empty()) {
    fmt::print(out_, "{:<10.6f} {}\n", secs, format_hex_bytes(record));
    return;
  }
  if (!header_printed_) {
    header_printed_ = true;
    std::string h = fmt::format("{:<10}", "TIME(s)");
    for (std::size_t i = 0; i < columns_.size(); ++i) append_cell(h, columns_[i], columns_[i].header, i + 1 == columns_.size());
    fmt::print(out_, "{}\n", h);
  }
  row_.clear();
  fmt::format_to(std::back_inserter(row_), "{:<10.6f}", secs);
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    cell_.clear();
    if (c.offset + c.size > record.size()) {
      cell_ = "?";
    } else if (c.syscall_name) {
      std::uint64_t nr = 0;
      std::memcpy(&nr, record.data() + c.offset, std::min<std::size_t>(c.size, 8));
      cell_ = syscall_name_or_number(nr);
    } else {
      c.format->append(record.subspan(c.offset, c.size), cell_);
    }
    append_cell(row_, c, cell_, i + 1 == columns_.size());
  }
  row_ += '\n';
  std::fwrite(row_.data(), 1, row_.size(), out_);
}

void EventTable::print_lost(std::uint64_t count) {
  fmt::print(out_, "lost {} events\n", count);
  std::fflush(out_);
}

}  // namespace bpfvm::cli
