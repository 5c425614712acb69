#!/usr/bin/env python3
"""bpfvm's BCC example: the files processes open, as a BCC primer prints them.

Run it with bpfvm as its kernel, and a workload in scope:
    bpfvm run -- python3 examples/bcc/opens.py [-n COMM]
    bpfvm run -- cat /etc/hostname                  (in another terminal)
Ctrl-C ends it, with the number of opens each process made.
"""
import argparse
import os

from bcc import BPF

parser = argparse.ArgumentParser(description="Trace open() calls, with BCC")
parser.add_argument("-n", "--name", help="only the processes of this command name")
args = parser.parse_args()

b = BPF(src_file=os.path.join(os.path.dirname(os.path.abspath(__file__)), "opens.c"))
b.attach_kprobe(event="do_sys_openat2", fn_name="on_open")
b.attach_kretprobe(event="do_sys_openat2", fn_name="on_open_return")

print("%-16s %-7s %4s %-7s %s" % ("COMM", "PID", "FD", "FLAGS", "FILE"), flush=True)


def show(cpu, data, size):
    event = b["events"].event(data)
    comm = event.comm.decode(errors="replace")
    if args.name and comm != args.name:
        return
    print("%-16s %-7d %4d %-7o %s" % (comm, event.pid, event.ret, event.flags,
                                      event.fname.decode(errors="replace")), flush=True)


b["events"].open_perf_buffer(show)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        break

print("\n%-7s %s" % ("PID", "OPENS"))
for pid, count in sorted(b["opens"].items(), key=lambda kv: kv[0].value):
    print("%-7d %d" % (pid.value, count.value))
