/* OP_DEVICE_BPF: replace the cgroup v2 device program of a cgroup with a new one.
 *
 * The new program is attached before the old ones are detached (BPF_F_ALLOW_MULTI), so
 * the cgroup is never without a device policy in between. Raw bpf(2), no libbpf. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec.h"

#define MAX_OLD_PROGS 64
#define VERIFIER_LOG_SIZE 16384

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int fail(char *err, size_t errlen, int e, const char *what, const char *dir)
{
	snprintf(err, errlen, "%s on %s: %s", what, dir, strerror(e));
	return -e;
}

int berth_device_bpf(const char *cgroup_dir, const void *insns, size_t insns_len,
		     const char *license, char *err, size_t errlen)
{
	static char log[VERIFIER_LOG_SIZE];
	uint32_t old_ids[MAX_OLD_PROGS];
	int old_fds[MAX_OLD_PROGS];
	uint32_t nold = MAX_OLD_PROGS, i;
	union bpf_attr attr;
	int cg, prog, e, ret = 0;

	if (insns_len == 0 || insns_len % sizeof(struct bpf_insn) != 0) {
		snprintf(err, errlen, "device program for %s: %zu bytes is not a whole number of instructions",
			 cgroup_dir, insns_len);
		return -EINVAL;
	}

	cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return fail(err, errlen, errno, "open cgroup", cgroup_dir);

	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)cg;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)old_ids;
	attr.query.prog_cnt = nold;
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) {
		e = errno;
		close(cg);
		return fail(err, errlen, e, "BPF_PROG_QUERY(BPF_CGROUP_DEVICE)", cgroup_dir);
	}
	nold = attr.query.prog_cnt;
	if (nold > MAX_OLD_PROGS) {
		close(cg);
		snprintf(err, errlen, "BPF_PROG_QUERY on %s: %u device programs attached, at most %d handled",
			 cgroup_dir, nold, MAX_OLD_PROGS);
		return -E2BIG;
	}
	/* Take fds of the old programs now: ids could be reused once they are detached. */
	for (i = 0; i < nold; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = old_ids[i];
		old_fds[i] = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (old_fds[i] < 0) {
			e = errno;
			while (i-- > 0)
				close(old_fds[i]);
			close(cg);
			return fail(err, errlen, e, "BPF_PROG_GET_FD_BY_ID (old device program)", cgroup_dir);
		}
	}

	log[0] = 0;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)(insns_len / sizeof(struct bpf_insn));
	attr.license = (uint64_t)(uintptr_t)(license && *license ? license : "Apache-2.0");
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	prog = sys_bpf(BPF_PROG_LOAD, &attr);
	if (prog < 0 && errno == ENOSPC) {
		/* Only the log overflowed: load again without it to get the real verdict. */
		memset(&attr.log_buf, 0, sizeof(attr.log_buf));
		attr.log_size = 0;
		attr.log_level = 0;
		prog = sys_bpf(BPF_PROG_LOAD, &attr);
	}
	if (prog < 0) {
		e = errno;
		size_t n = strlen(log);
		while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
			log[--n] = 0;
		snprintf(err, errlen, "BPF_PROG_LOAD(cgroup device program, %u insns) for %s: %s%s%s",
			 (unsigned)(insns_len / sizeof(struct bpf_insn)), cgroup_dir, strerror(e),
			 n ? "; verifier: " : "", n ? log : "");
		ret = -e;
		goto out;
	}

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cg;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) {
		ret = fail(err, errlen, errno, "BPF_PROG_ATTACH(BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)", cgroup_dir);
		close(prog);
		goto out;
	}
	close(prog); /* the attachment holds its own reference */

	for (i = 0; i < nold; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)cg;
		attr.attach_bpf_fd = (uint32_t)old_fds[i];
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT && ret == 0)
			ret = fail(err, errlen, errno, "BPF_PROG_DETACH (old device program)", cgroup_dir);
	}
out:
	for (i = 0; i < nold; i++)
		close(old_fds[i]);
	close(cg);
	return ret;
}
