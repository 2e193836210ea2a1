/* Shared declarations of berth-exec's translation units (exec.c, seccomp.c, bpf.c). */
#ifndef BERTH_EXEC_H
#define BERTH_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include "plan.h"

struct plan_arg {
	int is_str;       /* 1: s/len valid; 0: i valid */
	int64_t i;
	const char *s;    /* NUL-terminated, points into the plan buffer */
	uint32_t len;
};

struct plan_op {
	uint16_t code;
	uint16_t nargs;
	const struct plan_arg *args;
};

/* Error reporting: every helper fills err (a short message naming what failed,
 * e.g. "seccomp_rule_add(openat): Invalid argument") and returns -errno. */
#define BERTH_ERRLEN 512

/* seccomp.c: handles OP_SECCOMP_INIT / _ARCH / _RULE / _LOAD in the order they come.
 * Keeps one filter context between calls. Returns 0 or -errno. */
int berth_seccomp_op(const struct plan_op *op, char *err, size_t errlen);

/* bpf.c: OP_DEVICE_BPF. Returns 0 or -errno. */
int berth_device_bpf(const char *cgroup_dir, const void *insns, size_t insns_len,
		     const char *license, char *err, size_t errlen);

#endif
