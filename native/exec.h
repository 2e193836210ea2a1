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

/* seccomp.c: compiles the plan's filter (INIT..LOAD) now, in the parent, or reads it from
 * cache_dir (keyed by the ops and libseccomp's version; NULL: no cache), so that the
 * container process only loads it. Any problem leaves the ops to run as before. */
void berth_seccomp_prepare(const struct plan_op *ops, size_t nops, const char *cache_dir);

/* bpf.c: OP_DEVICE_BPF. Returns 0 or -errno. */
int berth_device_bpf(const char *cgroup_dir, const void *insns, size_t insns_len,
		     const char *license, char *err, size_t errlen);

/* ---- berth-exec internals (exec.c: protocol, sections; exec-ops.c: the ops) ---- */

struct exec_ctx {
	int chan;                   /* the channel to Node (CLOEXEC) */
	int sync;                   /* child: socket to the parent until MSG_CHILD_DONE, else -1 */
	int console_sock;           /* where OP_CONSOLE sends the pty master, or -1 */
	int fifo;                   /* O_PATH fd from OP_FIFO_OPEN, or -1 */
	int in_child;               /* running the child section */
	int done_sent;              /* MSG_CHILD_DONE already sent */
	const char *rootfs;         /* last OP_ROOTFS; "/" after the root moved */
	char *state;                /* last MSG_CONTINUE payload (NUL-terminated), or NULL */
	size_t state_len;
	const struct plan_op *ops;
	size_t nops;
	long exec_index;            /* index of OP_EXEC, or -1 */
	int will_clone;             /* the plan has OP_CLONE */
	int clone_cgroup;           /* cgroup v2 dir (O_PATH) the child is cloned into, or -1 */
	long clone_cgroup_index;    /* the OP_CGROUP_JOIN that named it */
};

/* Formats "<what>: strerror(e)" into err and returns -e. */
int berth_errf(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Sends one channel message (single sendmsg, MSG_NOSIGNAL). Returns 0 or -errno. */
int berth_send_msg(int fd, uint32_t type, const void *payload, size_t len);
/* Sends MSG_WARNING with a formatted text; failures are ignored. */
void berth_warn(struct exec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends MSG_CHILD_DONE once and releases the parent. Returns 0 or -errno. */
int berth_child_done(struct exec_ctx *c, char *err, size_t errlen);
/* exec-ops.c: runs one op of the child or parent sections (not the section markers). */
int berth_run_op(struct exec_ctx *c, size_t index, char *err, size_t errlen);
/* Writes our pid to dir/cgroup.procs (the plain way to join any cgroup). Returns 0 or -errno. */
int berth_join_cgroup_procs(const char *dir, char *err, size_t errlen);

#endif
