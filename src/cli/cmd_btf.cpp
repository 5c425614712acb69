// bpfvm btf { show | list } [id BTF_ID] and btf dump BTF [format {raw | c}]:
//   BTF := { id BTF_ID | prog PROG | map MAP | file FILE }
// The BTF objects of every bpfvm process (registry records, and the copies programs' and maps'
// records keep of the BTF they were loaded with), or of an object file.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/obj/object_spec.hpp"
#include "btf_raw.hpp"
#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"

namespace bpfvm::cli {

namespace {


struct BtfUse {
  std::size_t size = 0;
  std::vector<std::uint32_t> prog_ids, map_ids;
};

// Every BTF id in use: its own record, or programs and maps that name it.
Result<std::map<std::uint32_t, BtfUse>> btf_uses(runtime::Runtime& rt) {
  std::map<std::uint32_t, BtfUse> uses;
  const auto registry = BPFVM_TRY(open_registry(rt));
  for (const auto& r : registry->list(runtime::ObjectKind::kBtf)) uses[r.value("id", 0u)].size = r.value("size", std::size_t{0});
  for (const auto kind : {runtime::ObjectKind::kProg, runtime::ObjectKind::kMap}) {
    for (const auto& r : registry->list(kind)) {
      if (!r.contains("btf_id")) continue;
      BtfUse& u = uses[r.at("btf_id").get<std::uint32_t>()];
      // Gone with its loader: a pinned object's record keeps a copy ("aa bb cc ..." hex).
      if (!u.size && r.contains("btf")) u.size = (r.at("btf").get<std::string>().size() + 1) / 3;
      (kind == runtime::ObjectKind::kProg ? u.prog_ids : u.map_ids).push_back(r.value("id", 0u));
    }
  }
  return uses;
}

std::string join(const std::vector<std::uint32_t>& ids) {
  std::string out;
  for (std::uint32_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

int show(Args& args) {
  const std::optional<std::uint32_t> only = parse_optional_id(args, "btf");
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
  runtime::Runtime rt;
  const auto found = btf_uses(rt);
  if (!found) return fail(found.error());
  const auto& uses = *found;
  if (only && !uses.contains(*only)) return fail(make_error(Errc::kNotFound, "get by id ({}): No such file or directory", *only));
  ojson all = ojson::array();
  for (const auto& [id, u] : uses) {
    if (only && id != *only) continue;
    if (output_format().json) {
      all.push_back({{"id", id}, {"size", u.size}, {"prog_ids", u.prog_ids}, {"map_ids", u.map_ids}, {"kernel", false}});
      continue;
    }
    std::string line = fmt::format("{}: name <anon>  size {}B", id, u.size);
    if (!u.prog_ids.empty()) line += "  prog_ids " + join(u.prog_ids);
    if (!u.map_ids.empty()) line += "  map_ids " + join(u.map_ids);
    fmt::print("{}\n", line);
  }
  if (output_format().json) print_json(only && all.size() == 1 ? all[0] : all);
  return kExitOk;
}

Result<obj::Btf> btf_by_id(runtime::Runtime& rt, std::uint32_t id) {
  if (auto b = rt.open_btf_by_id(id)) return (*b)->btf();
  // Gone with its loader: a program or map record that names it keeps a copy.
  if (const auto& registry = rt.registry()) {
    for (const auto kind : {runtime::ObjectKind::kProg, runtime::ObjectKind::kMap}) {
      for (const auto& r : registry->list(kind)) {
        if (r.value("btf_id", 0u) == id && r.contains("btf")) {
          return obj::Btf::parse(BPFVM_TRY(parse_hex_bytes(r.at("btf").get<std::string>())));
        }
      }
    }
  }
  return make_error(Errc::kNotFound, "get by id ({}): No such file or directory", id);
}

int dump(Args& args) {
  const std::string_view source = args.next();
  runtime::Runtime rt;
  Result<obj::Btf> btf = make_error(Errc::kInvalid, "no BTF");
  if (source == "id") {
    const std::string v(args.next());
    char* end = nullptr;
    const unsigned long id = std::strtoul(v.c_str(), &end, 0);
    if (v.empty() || *end || id == 0) throw UsageError{fmt::format("can't parse BTF id '{}'", v)};
    btf = btf_by_id(rt, static_cast<std::uint32_t>(id));
  } else if (source == "file") {
    const std::string path(args.next());
    if (path.empty()) throw UsageError{"btf dump file needs a FILE"};
    // An ELF object's .BTF, or a raw BTF blob (such as /sys/kernel/btf/vmlinux), as bpftool reads both.
    auto bytes = os::read_file(path);
    if (!bytes) return fail(bytes.error());
    if (bytes->size() >= 4 && std::equal(bytes->begin(), bytes->begin() + 4, "\x7f" "ELF")) {
      auto spec = obj::open_object(path);
      if (!spec) return fail(spec.error());
      if (!spec->btf) return fail(make_error(Errc::kNotFound, "'{}' has no BTF", path));
      btf = *spec->btf;
    } else {
      btf = obj::Btf::parse(*bytes);
      if (!btf) return fail(std::move(btf).error().with_context(fmt::format("'{}' is neither an ELF object nor BTF", path)));
    }
  } else if (source == "prog") {
    auto p = open_program(rt, parse_prog_ref(args));
    if (!p) return fail(p.error());
    if (!(*p)->btf()) return fail(make_error(Errc::kNotFound, "program '{}' has no BTF", (*p)->name()));
    btf = (*p)->btf()->btf();
  } else if (source == "map") {
    auto m = open_map(rt, parse_map_ref(args));
    if (!m) return fail(m.error());
    if (!(*m)->btf()) return fail(make_error(Errc::kNotFound, "map '{}' has no BTF", (*m)->name()));
    btf = (*m)->btf()->btf();
  } else {
    throw UsageError{"btf dump takes BTF := { id BTF_ID | prog PROG | map MAP | file FILE }"};
  }
  bool c = false;
  while (!args.empty()) {
    const std::string_view w = args.next();
    if (w != "format") throw UsageError{fmt::format("unexpected '{}' in btf dump", w)};
    const std::string_view f = args.next();
    if (f == "c") c = true;
    else if (f == "raw") c = false;
    else throw UsageError{fmt::format("unrecognized format specifier: '{}', possible values: raw, c", f)};
  }
  if (!btf) return fail(btf.error());
  if (c) {
    if (output_format().json) throw UsageError{"JSON output is not supported for C-syntax dumps"};
    auto text = btf_c(*btf);
    if (!text) return fail(text.error());
    fmt::print("{}", *text);
    return kExitOk;
  }
  if (output_format().json) print_json(btf_raw_json(*btf));
  else fmt::print("{}", btf_raw(*btf));
  return kExitOk;
}

}  // namespace

int cmd_btf(Args& args) {
  const std::string_view sub = args.next();
  if (sub.empty() || sub == "show" || sub == "list") return show(args);  // bare `btf` is `btf show`
  if (sub == "dump") return dump(args);
  throw UsageError{fmt::format("unknown btf command '{}'", sub), true};
}

}  // namespace bpfvm::cli
