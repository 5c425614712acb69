# Drops root the way setpriv does (PR_SET_KEEPCAPS, setresuid, capset, setgroups, setresgid), then
# drops every capability in this thread alone, and prints each thread's credentials after the agent's
# watcher has woken: "THREADS threads: [distinct Uid Gid CapPrm CapEff groups rows]".
import ctypes
import glob
import os
import time

libc = ctypes.CDLL(None, use_errno=True)


class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


PR_SET_KEEPCAPS = 8
header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
caps = (Data * 2)()
libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
os.setresuid(65534, 65534, 65534)
libc.capget(ctypes.byref(header), caps)
for d in caps:
    d.effective = d.permitted
assert libc.capset(ctypes.byref(header), caps) == 0
os.setgroups([])
os.setresgid(65534, 65534, 65534)
for d in caps:
    d.effective = d.permitted = d.inheritable = 0
assert libc.capset(ctypes.byref(header), caps) == 0
time.sleep(1.5)
rows = set()
tasks = glob.glob("/proc/self/task/*/status")
for path in tasks:
    with open(path) as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines())
    rows.add(" ".join(fields[k].split()[0] for k in ("Uid", "Gid", "CapPrm", "CapEff")) + " groups=" + fields["Groups"].strip())
print(len(tasks), "threads:", sorted(rows))
