// bpfvm's BCC example, in BCC's C dialect: every file a process opens, with the result, as the primers'
// second example shows it (a kprobe and a kretprobe on the kernel's do_sys_openat2, a hash between
// them, a perf buffer to user space). BCC turns `how->flags` into a bpf_probe_read of the kernel's
// struct open_how; bpfvm gives the kprobe the registers do_sys_openat2 has.
#include <uapi/linux/ptrace.h>
#include <uapi/linux/openat2.h>
#include <linux/sched.h>

struct start_t {
    const char *fname;
    u64 flags;
};

struct event_t {
    u32 pid;
    int ret;
    u64 flags;
    char comm[TASK_COMM_LEN];
    char fname[NAME_MAX];
};

BPF_HASH(starts, u64, struct start_t);
BPF_HASH(opens, u32, u64);
BPF_PERF_OUTPUT(events);

int on_open(struct pt_regs *ctx, int dfd, const char __user *filename, struct open_how *how)
{
    u64 id = bpf_get_current_pid_tgid();
    struct start_t start = {};
    start.fname = filename;
    start.flags = how->flags;
    starts.update(&id, &start);
    return 0;
}

int on_open_return(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct start_t *start = starts.lookup(&id);
    if (start == 0)
        return 0;
    struct event_t event = {};
    event.pid = id >> 32;
    event.ret = PT_REGS_RC(ctx);
    event.flags = start->flags;
    bpf_get_current_comm(&event.comm, sizeof(event.comm));
    bpf_probe_read_user_str(&event.fname, sizeof(event.fname), start->fname);
    events.perf_submit(ctx, &event, sizeof(event));
    opens.increment(event.pid);
    starts.delete(&id);
    return 0;
}
