// CO-RE relocations of every kind bpfvm applies, against local types a test gives other layouts: field
// offsets through an anonymous member and an array, sizes, existence, signedness, a bitfield, a
// "___flavour" type, type existence and size, enum values.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct thing {
  int pad;
  union {
    int id;
    unsigned int uid;
  };
  long hist[4];
  unsigned int flag : 3, mode : 5;
  short gone;
} __attribute__((preserve_access_index));

struct thing___old {
  long legacy;
} __attribute__((preserve_access_index));

enum colour { RED = 1, GREEN = 2 };

SEC("socket")
int core_values(struct __sk_buff *skb) {
  struct thing *t = (void *)(long)skb->len;  // never dereferenced: the relocated values are returned
  long v = 0;
  v += bpf_core_field_offset(t->id);          // through the anonymous union
  v += bpf_core_field_offset(t->hist[2]) << 8;
  v += bpf_core_field_size(t->hist[1]) << 16;
  v += (long)bpf_core_field_exists(t->gone) << 24;
  v += (long)__builtin_preserve_field_info(t->id, BPF_FIELD_SIGNED) << 25;
  v += (long)bpf_core_type_exists(struct thing___old) << 26;
  v += (long)bpf_core_type_size(struct thing) << 27;
  v += (long)bpf_core_enum_value(enum colour, GREEN) << 40;
  v += (long)bpf_core_enum_value_exists(enum colour, RED) << 48;
  return v != 0;
}

SEC("socket")
int core_bitfield(struct __sk_buff *skb) {
  struct thing t = {};
  t.mode = 5;
  return BPF_CORE_READ_BITFIELD(&t, mode);
}

char LICENSE[] SEC("license") = "GPL";
