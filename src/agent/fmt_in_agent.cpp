// fmt's compiled functions, built into libbpfvm-agent.so so that it does not load libfmt.so, and with
// it libstdc++.so, libgcc_s.so and libm.so, into every process in scope (libstdc++ is linked in too:
// src/agent/CMakeLists.txt). Each shared library is four or five mappings that every fork() of the
// process copies and every exit of the child tears down: a process in scope went from 99 mappings to 74,
// its agent's start in /bin/true from 12.3 to 9.3 ms (README, 2026-12-08).
//
// fmt's own definitions (format-inl.h), hidden (this library's default visibility, and FMT_API empty
// without FMT_SHARED): a process with a libfmt of its own keeps using that one.
// The templates the agent's code instantiates from the library are instantiated explicitly; the link
// (-z defs, without libfmt on its line) names any that a later change starts to use.
#undef FMT_SHARED
#include <fmt/format-inl.h>

namespace fmt { inline namespace v9 { namespace detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl<char>(locale_ref) -> char;
namespace dragonbox {
template auto to_decimal<float>(float x) noexcept -> decimal_fp<float>;
template auto to_decimal<double>(double x) noexcept -> decimal_fp<double>;
}  // namespace dragonbox
}}}  // namespace fmt::v9::detail
