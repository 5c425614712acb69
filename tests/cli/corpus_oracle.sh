#!/usr/bin/env bash
# The kernel as the oracle of bpfvm's verdicts on objects built by others: every program of the test
# objects and the corpus (tests/corpus, tests/progs) and, when Debian's libbpf-tools is installed, of
# the objects its binaries embed, verified by bpfvm and loaded alone into the kernel (bench/
# corpus_agreement). Fails on any disagreement (these objects are judged alike today: a program bpfvm
# refuses that the kernel accepts is a regression too); prints the agreement.
#   corpus_oracle.sh CORPUS_AGREEMENT PROGS_DIR
set -u
tool="$1" progs="$2"
[ "$(id -u)" -eq 0 ] || { echo "skipped: loading into the kernel needs root"; exit 77; }
[ -d "$progs" ] || { echo "skipped: no test objects (no clang)"; exit 77; }
files=("$progs")
if dpkg-query -W -f='${Status}' libbpf-tools 2>/dev/null | grep -q 'install ok installed'; then
  while read -r f; do files+=("$f"); done < <(dpkg -L libbpf-tools | grep '^/usr/sbin/')
else
  echo "note: libbpf-tools is not installed (scripts/deps.sh installs it); its objects are not compared"
fi
# CORPUS_SPEED=1 (make bench): also the verification times of the programs both accept, bpfvm's over
# the kernel's, each side's the best of three.
exec "$tool" --require 100 ${CORPUS_SPEED:+--speed} "${files[@]}"
