#include "data_file.hpp"

#include <sstream>

#include "bpfvm/base/hex.hpp"
#include "bpfvm/isa/assembler.hpp"

namespace bpfvm::test {

namespace {
std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  const auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

Result<std::uint64_t> parse_u64(const std::string& s, const std::string& name) {
  try {
    std::size_t used = 0;
    const bool hex = s.find("0x") != std::string::npos;
    std::uint64_t v = 0;
    if (!s.empty() && s[0] == '-') {
      v = static_cast<std::uint64_t>(std::stoll(s, &used, hex ? 16 : 10));
    } else {
      v = std::stoull(s, &used, hex ? 16 : 10);
    }
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    return make_error(Errc::kInvalid, "{}: '{}' is not a number", name, s);
  }
}
}  // namespace

Result<DataCase> parse_data_file(const std::string& text, const std::string& name) {
  DataCase c;
  c.name = name;
  std::string section;
  std::string mem_text;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("--") != std::string::npos && trim(line).starts_with("--")) {
      section = trim(trim(line).substr(2));
      if (section == "raw") c.raw.emplace();
      continue;
    }
    if (section == "asm") {
      c.asm_text += line + "\n";
      continue;
    }
    if (auto hash = line.find('#'); hash != std::string::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (section == "raw") {
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        std::uint64_t v = BPFVM_TRY(parse_u64(w, name));
        isa::RawInsn r;
        r.opcode = static_cast<std::uint8_t>(v);
        r.dst = static_cast<std::uint8_t>((v >> 8) & 0xf);
        r.src = static_cast<std::uint8_t>((v >> 12) & 0xf);
        r.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(v >> 16));
        r.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32));
        c.raw->push_back(r);
      }
    } else if (section == "mem") {
      mem_text += line + " ";
    } else if (section == "result") {
      c.result = BPFVM_TRY(parse_u64(line, name));
    } else if (section == "error") {
      c.error = line;
    }
  }
  c.mem = BPFVM_TRY_CTX(parse_hex_bytes(mem_text), "{}: mem", name);
  return c;
}

Result<std::vector<isa::RawInsn>> program_of(const DataCase& c) {
  if (c.raw) return *c.raw;
  return isa::assemble(c.asm_text, isa::AsmSyntax::kConformance, c.name);
}

}  // namespace bpfvm::test
