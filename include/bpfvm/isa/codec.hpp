// Decoding raw instructions into Insn and encoding them back.
//
// decode() checks every field of one instruction against the opcode table and returns an error that
// says which field is wrong and why; the caller adds the instruction index. encode() is its inverse:
// encode(decode(x)) == x for every valid x.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

// Decodes the instruction starting at slots[0]; an LDDW also reads slots[1].
Result<Insn> decode(std::span<const RawInsn> slots);

// Appends the one or two raw slots of insn.
void encode(const Insn& insn, std::vector<RawInsn>& out);
std::vector<RawInsn> encode(std::span<const Insn> insns);

// Raw little-endian bytes <-> raw instructions. A length that is not a multiple of 8 is an error.
Result<std::vector<RawInsn>> from_wire(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> to_wire(std::span<const RawInsn> insns);

}  // namespace bpfvm::isa
