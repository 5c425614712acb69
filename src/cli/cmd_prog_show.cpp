// bpfvm prog show|list [PROG] and prog pin PROG FILE: bpftool's listing of loaded programs, of every
// bpfvm process (the system-wide registry), in its text layout or as JSON (-j, -p).
#include <fmt/format.h>

#include <ctime>

#include "bpfvm/obj/section_name.hpp"
#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"
#include "owner.hpp"

namespace bpfvm::cli {

namespace {


std::string local_time(std::int64_t secs) {
  const std::time_t t = secs;
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%FT%T%z", &tm);
  return buf;
}


// The kernel charges a program's pages: its struct bpf_prog header and instructions, rounded up.
std::size_t prog_memlock(std::size_t xlated) { return (xlated + 72 + 4095) / 4096 * 4096; }

ojson prog_json(const nlohmann::json& r) {
  ojson j;
  j["id"] = r.value("id", 0u);
  j["type"] = std::string(obj::prog_type_name(r.value("type", 0u)));
  j["name"] = r.value("name", "");
  j["tag"] = r.value("tag", "");
  j["gpl_compatible"] = r.value("gpl_compatible", false);
  j["loaded_at"] = r.value("loaded_at", std::int64_t{0});
  j["uid"] = r.value("uid", 0u);
  j["orphaned"] = false;
  const std::size_t xlated = r.value("bytes_xlated", std::size_t{0});
  j["bytes_xlated"] = xlated;
  j["jited"] = r.contains("jited");
  if (r.contains("jited")) j["bytes_jited"] = r.value("bytes_jited", std::size_t{0});
  j["bytes_memlock"] = prog_memlock(xlated);
  if (!r.value("map_ids", nlohmann::json::array()).empty()) j["map_ids"] = r.at("map_ids");
  if (r.contains("btf_id")) j["btf_id"] = r.at("btf_id");
  j["verified_insns"] = r.value("verified_insns", 0u);
  if (r.contains("pins")) j["pinned"] = r.at("pins");
  j["pids"] = owner_json(r);
  return j;
}

void print_prog_text(const nlohmann::json& r) {
  const ojson j = prog_json(r);
  fmt::print("{}: {}  name {}  tag {}{}\n", j["id"].get<std::uint32_t>(), j["type"].get<std::string>(),
             j["name"].get<std::string>(), j["tag"].get<std::string>(), j["gpl_compatible"].get<bool>() ? "  gpl" : "");
  fmt::print("\tloaded_at {}  uid {}\n", local_time(j["loaded_at"].get<std::int64_t>()), j["uid"].get<std::uint32_t>());
  std::string line = fmt::format("\txlated {}B", j["bytes_xlated"].get<std::size_t>());
  line += j["jited"].get<bool>() ? fmt::format("  jited {}B", j["bytes_jited"].get<std::size_t>()) : "  not jited";
  line += fmt::format("  memlock {}B", j["bytes_memlock"].get<std::size_t>());
  if (j.contains("map_ids")) {
    std::string ids;
    for (const auto& id : j["map_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<std::uint32_t>());
    line += "  map_ids " + ids;
  }
  fmt::print("{}\n", line);
  if (j.contains("btf_id")) fmt::print("\tbtf_id {}\n", j["btf_id"].get<std::uint32_t>());
  print_pins_and_owner(r);
}

}  // namespace

int prog_show(Args& args) {
  runtime::Runtime rt;
  std::vector<nlohmann::json> records;
  const bool named = !args.empty();
  if (named) {
    const ObjectRef ref = parse_prog_ref(args);
    if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after PROG", args.peek())};
    auto ids = resolve_programs(rt, ref);
    if (!ids) return fail(ids.error());
    for (std::uint32_t id : *ids) {
      if (auto r = program_record_of(rt, id)) records.push_back(std::move(*r));
    }
    if (records.empty()) return fail(make_error(Errc::kNotFound, "no program record for '{}'", ref.value));
  } else {
    auto registry = open_registry(rt);
    if (!registry) return fail(registry.error());
    records = (*registry)->list(runtime::ObjectKind::kProg);
  }
  if (output_format().json) {
    // bpftool: one object for one named program, an array for a listing.
    ojson out = ojson::array();
    for (const auto& r : records) out.push_back(prog_json(r));
    print_json(records.size() == 1 && named ? out[0] : out);
    return kExitOk;
  }
  for (const auto& r : records) print_prog_text(r);
  if (records.empty() && !named) note_empty_listing(rt, "programs");
  return kExitOk;
}

int prog_pin(Args& args) {
  const ObjectRef ref = parse_prog_ref(args);
  const std::string file(args.next());
  if (file.empty()) throw UsageError{"prog pin needs a FILE"};
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after prog pin PROG FILE", args.peek())};
  runtime::Runtime rt;
  auto prog = open_program(rt, ref);
  if (!prog) return fail(prog.error());
  if (auto r = rt.pin(file, *prog); !r) return fail_pin(file, r.error());
  return kExitOk;
}

}  // namespace bpfvm::cli
