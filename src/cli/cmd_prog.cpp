// bpfvm prog loadall | run: bpftool's `prog` grammar and output over bpfvm's runtime.
//   prog load OBJ PATH [type TYPE] [pinmaps MAP_DIR]      (the first program, pinned at PATH)
//   prog loadall OBJ PATH [type TYPE] [pinmaps MAP_DIR]   (every program, pinned under PATH)
//   prog tracelog
//   prog dump jited PROG [{file FILE | [opcodes] [linum]}]   (cmd_prog_dump.cpp)
//   prog run PROG data_in FILE [data_out FILE [data_size_out L]] [ctx_in FILE] [ctx_out FILE
//            [ctx_size_out M]] [repeat N]          PROG := pinned PATH
// Pins live under the pin root (runtime::default_pin_root()); /sys/fs/bpf/... names map onto it.
#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "bpfvm/base/file.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/runtime/object.hpp"
#include "command.hpp"
#include "object_ref.hpp"

namespace bpfvm::cli {

namespace {


// libbpf's pin names: bpffs refuses '.', so "obj.rodata" pins as "obj_rodata".
std::string pin_name(std::string name) {
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

std::uint32_t parse_u32(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  if (text.empty() || text.size() > 10) throw UsageError{fmt::format("{} '{}' is not a number", what, text)};
  for (char c : text) {
    if (c < '0' || c > '9') throw UsageError{fmt::format("{} '{}' is not a number", what, text)};
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) throw UsageError{fmt::format("{} '{}' is too large", what, text)};
  return static_cast<std::uint32_t>(v);
}

Result<std::vector<std::uint8_t>> read_input(const std::string& path) {
  if (path != "-") return os::read_file(path);
  std::vector<std::uint8_t> data;
  for (int c; (c = std::getchar()) != EOF;) data.push_back(static_cast<std::uint8_t>(c));
  return data;
}

Result<void> write_output(const std::string& path, std::span<const std::uint8_t> data) {
  if (path != "-") return os::write_file(path, data);
  // bpftool prints data sent to "-" as hex, 16 bytes a line.
  for (std::size_t i = 0; i < data.size(); i += 16) {
    std::string line;
    for (std::size_t j = i; j < std::min(data.size(), i + 16); ++j) line += fmt::format("{}{:02x}", j == i ? "" : " ", data[j]);
    fmt::print("{}\n", line);
  }
  return {};
}

// prog load pins the object's first program at PATH; prog loadall pins each under the directory PATH.
// Either way every program of the object is loaded (and so verified) first, as libbpf loads them.
int load(Args& args, runtime::ExecMode mode, bool all) {
  const std::string_view command = all ? "loadall" : "load";
  const std::string object = std::string(args.next());
  const std::string path = std::string(args.next());
  if (object.empty() || path.empty()) throw UsageError{fmt::format("prog {} needs OBJ and PATH", command)};
  std::optional<std::uint32_t> type;
  std::string pinmaps;
  while (!args.empty()) {
    const std::string_view word = args.next();
    if (word == "type") {
      const std::string_view name = args.next();
      type = obj::prog_type_from_name(name);
      if (!type) throw UsageError{fmt::format("unknown program type '{}'", name)};
    } else if (word == "pinmaps") {
      pinmaps = std::string(args.next());
      if (pinmaps.empty()) throw UsageError{"pinmaps needs a directory"};
    } else {
      throw UsageError{fmt::format("unexpected '{}' after prog {} OBJ PATH", word, command)};
    }
  }
  runtime::Runtime rt;
  auto spec = obj::open_object(object);
  if (!spec) return fail(spec.error());
  if (type) {
    for (auto& p : spec->programs) {
      p.kind.prog_type = *type;
      p.kind.supported = true;
    }
  }
  runtime::ObjectOptions options;
  options.mode = mode;
  auto loaded = runtime::Object::load(rt, *spec, options);
  if (!loaded) return fail(loaded.error());
  // bpftool creates the directory the programs are pinned in.
  const auto make_dir = [&](const std::string& dir) -> Result<void> {
    const std::string file = BPFVM_TRY(rt.pin_file_for(dir));
    return os::make_directories(file);
  };
  if (all) {
    if (auto r = make_dir(path); !r) return fail(r.error());
    for (const auto& p : loaded->programs()) {
      if (auto r = rt.pin(path + "/" + p.name, p.program); !r) return fail(r.error());
    }
  } else {
    if (loaded->programs().empty()) return fail(make_error(Errc::kNotFound, "'{}' has no program to pin", object));
    if (auto r = rt.pin(path, loaded->programs().front().program); !r) return fail(r.error());
  }
  if (!pinmaps.empty()) {
    if (auto r = make_dir(pinmaps); !r) return fail(r.error());
    for (std::size_t i = 0; i < loaded->maps().size(); ++i) {
      if (spec->maps[i].pin_by_name) continue;  // already pinned under its own name
      const auto& m = loaded->maps()[i];
      if (auto r = rt.pin(pinmaps + "/" + pin_name(m->name()), m); !r) return fail(r.error());
    }
  }
  return kExitOk;
}

int run(Args& args) {
  if (args.empty()) throw UsageError{"prog run needs a PROG"};
  const ObjectRef ref = parse_prog_ref(args);
  std::string data_in, data_out, ctx_in, ctx_out;
  std::uint32_t repeat = 1, data_size_out = 0, ctx_size_out = 0;
  while (!args.empty()) {
    const std::string_view word = args.next();
    const auto value = [&]() {
      if (args.empty()) throw UsageError{fmt::format("'{}' needs a value", word)};
      return std::string(args.next());
    };
    if (word == "data_in") data_in = value();
    else if (word == "data_out") data_out = value();
    else if (word == "ctx_in") ctx_in = value();
    else if (word == "ctx_out") ctx_out = value();
    else if (word == "repeat") repeat = parse_u32(value(), "repeat");
    else if (word == "data_size_out") data_size_out = parse_u32(value(), "data_size_out");
    else if (word == "ctx_size_out") ctx_size_out = parse_u32(value(), "ctx_size_out");
    else throw UsageError{fmt::format("unexpected '{}' in prog run", word)};
  }
  runtime::Runtime rt;
  auto prog = open_program(rt, ref);
  if (!prog) return fail(prog.error());
  runtime::TestRunRequest req;
  std::vector<std::uint8_t> din, cin;
  if (!data_in.empty()) {
    auto d = read_input(data_in);
    if (!d) return fail(d.error());
    din = std::move(*d);
  }
  if (!ctx_in.empty()) {
    auto c = read_input(ctx_in);
    if (!c) return fail(c.error());
    cin = std::move(*c);
  }
  req.data_in = din;
  req.ctx_in = cin;
  req.repeat = repeat;
  auto result = (*prog)->test_run(req);
  if (!result) {  // bpftool exits with BPF_PROG_TEST_RUN's errno here; the message says why in words
    const int code = exit_errno(result.error());
    fail(std::move(result).error().with_context("failed to run program"));
    return code;
  }
  if (!data_out.empty()) {
    auto out = std::span<const std::uint8_t>(result->data_out);
    if (data_size_out && out.size() > data_size_out) out = out.first(data_size_out);
    if (auto r = write_output(data_out, out); !r) return fail(r.error());
  }
  if (!ctx_out.empty()) {
    auto out = std::span<const std::uint8_t>(result->ctx_out);
    if (ctx_size_out && out.size() > ctx_size_out) out = out.first(ctx_size_out);
    if (auto r = write_output(ctx_out, out); !r) return fail(r.error());
  }
  fmt::print("Return value: {}, duration{}: {}ns\n", result->retval, repeat > 1 ? " (average)" : "", result->duration_ns);
  return kExitOk;
}

volatile std::sig_atomic_t g_stop = 0;

// prog tracelog: prints bpf_trace_printk lines from the trace pipe as they come, until Ctrl-C, as
// bpftool prints /sys/kernel/tracing/trace_pipe. Reading consumes them.
int tracelog(Args& args) {
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}' after prog tracelog", args.peek())};
  runtime::Runtime rt;
  auto pipe = rt.trace_pipe();
  if (!pipe) return fail(pipe.error());
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  while (!g_stop) {
    (*pipe)->wait(100);
    (*pipe)->consume_shared([](std::span<const std::uint8_t> line) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      return 0;
    });
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

int cmd_prog(Args& args, std::optional<bool> jit) {
  const std::string_view sub = args.next();
  if (sub == "loadall" || sub == "load") {
    const runtime::ExecMode mode =
        !jit ? runtime::default_exec_mode() : *jit ? runtime::ExecMode::kJit : runtime::ExecMode::kInterpreter;
    return load(args, mode, sub == "loadall");
  }
  if (sub == "dump") return prog_dump(args);
  if (sub.empty() || sub == "show" || sub == "list") return prog_show(args);  // bare `prog` is `prog show`
  if (sub == "pin") return prog_pin(args);
  if (sub == "profile") return prog_profile(args);
  if (sub == "run") return run(args);
  if (sub == "tracelog") return tracelog(args);
  throw UsageError{fmt::format("unknown prog command '{}'", sub), true};
}

}  // namespace bpfvm::cli
