#include "records.hpp"

#include <unistd.h>

#include "bpfvm/base/hex.hpp"
#include "bpfvm/isa/codec.hpp"

namespace bpfvm::runtime {

using nlohmann::json;

namespace {

std::string hex(std::span<const std::uint8_t> bytes) { return format_hex_bytes(bytes); }

}  // namespace

json map_def_json(const maps::MapDef& d) {
  return {{"name", d.name},         {"type", d.type},           {"key_size", d.key_size},
          {"value_size", d.value_size}, {"max_entries", d.max_entries}, {"map_flags", d.map_flags},
          {"map_extra", d.map_extra}};
}

void put_program_load(json& j, const Program& p) {
  j["name"] = p.name();
  j["type"] = p.type();
  j["expected_attach_type"] = p.expected_attach_type();
  if (p.attach_btf_id()) j["attach_btf_id"] = p.attach_btf_id();
  if (p.sleepable()) j["sleepable"] = true;
  j["license"] = p.license();
  j["insns"] = hex(isa::to_wire(p.original()));
  j["func_info"] = json::array();
  for (const auto& f : p.func_info()) j["func_info"].push_back({f.insn, f.type_id});
  j["line_info"] = json::array();
  for (const auto& l : p.line_info()) j["line_info"].push_back({l.insn, l.file_name_off, l.line_off, l.line_col});
}

Result<ProgramLoadRequest> program_request(const json& j) {
  ProgramLoadRequest req;
  req.name = j.at("name").get<std::string>();
  req.prog_type = j.at("type").get<std::uint32_t>();
  req.expected_attach_type = j.value("expected_attach_type", 0u);
  req.attach_btf_id = j.value("attach_btf_id", 0u);
  req.sleepable = j.value("sleepable", false);
  req.license = j.value("license", "");
  req.insns = BPFVM_TRY(isa::from_wire(BPFVM_TRY(parse_hex_bytes(j.at("insns").get<std::string>()))));
  for (const json& f : j.at("func_info")) req.func_info.push_back({f.at(0).get<std::uint32_t>(), f.at(1).get<std::uint32_t>()});
  for (const json& l : j.at("line_info")) {
    req.line_info.push_back({l.at(0).get<std::uint32_t>(), l.at(1).get<std::uint32_t>(), l.at(2).get<std::uint32_t>(),
                             l.at(3).get<std::uint32_t>()});
  }
  return req;
}

json program_record(const Program& p) {
  json j;
  put_program_load(j, p);
  j["gpl_compatible"] = gpl_compatible(p.license());
  std::string tag;
  for (std::uint8_t b : p.tag()) tag += fmt::format("{:02x}", b);
  j["tag"] = tag;
  j["loaded_at"] = std::chrono::duration_cast<std::chrono::seconds>(p.load_time().time_since_epoch()).count();
  j["uid"] = ::getuid();
  j["xlated"] = hex(isa::to_wire(p.xlated()));
  j["bytes_xlated"] = p.xlated().size() * sizeof(isa::RawInsn);
  if (const vm::JitProgram* jit = p.jited()) {
    j["jited"] = hex(jit->code());
    j["bytes_jited"] = jit->code().size();
    j["jited_insn_offsets"] = std::vector<std::uint32_t>(jit->insn_offsets().begin(), jit->insn_offsets().end());
    j["jit_harden"] = jit->options().harden;
  }
  json ids = json::array();
  for (const auto& m : p.maps()) ids.push_back(m->id());
  j["map_ids"] = ids;
  if (p.btf()) j["btf_id"] = p.btf()->id();
  j["verified_insns"] = p.verified().insns_processed;
  return j;
}

json map_record(const Map& m) {
  json j = map_def_json(m.def());
  if (!m.impl().storage_path().empty()) j["storage"] = m.impl().storage_path();
  if (const maps::MapDef* inner = m.impl().inner_def()) j["inner"] = map_def_json(*inner);
  if (m.btf()) {
    j["btf_id"] = m.btf()->id();
    j["btf_key_type_id"] = m.btf_key_type_id();
    j["btf_value_type_id"] = m.btf_value_type_id();
  }
  return j;
}

json btf_record(const BtfObject& b) { return {{"bytes", hex(b.btf().bytes())}, {"size", b.btf().bytes().size()}}; }

json link_record(const Link& l) {
  const LinkTarget& w = l.where();
  json j{{"prog_id", l.program()->id()}, {"attach_type", l.attach_type()}, {"target", l.target()},
         {"kind", w.kind}, {"name", w.name}, {"pid", w.pid}};
  if (!w.path.empty()) {
    j["uprobe"] = {{"path", w.path}, {"dev", w.dev}, {"inode", w.inode}, {"offset", w.offset},
                   {"function", w.function}, {"func_offset", w.func_offset}, {"func_size", w.func_size},
                   {"func_slack", w.func_slack}, {"func_pad_before", w.func_pad_before}};
    if (w.ref_ctr_offset) j["uprobe"]["ref_ctr_offset"] = w.ref_ctr_offset;
  }
  if (w.cookie) j["cookie"] = w.cookie;
  if (w.self) j["self"] = true;
  if (w.scope) j["scope"] = w.scope;
  if (w.in_process) j["agent"] = true;
  return j;
}

}  // namespace bpfvm::runtime
