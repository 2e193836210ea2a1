/*
 * OP_SECCOMP_INIT / _ARCH / _RULE / _LOAD: build a filter with libseccomp and load it.
 *
 * What the TypeScript compiler (src/runtime/seccomp.ts) sends:
 *   INIT (i:action, i:errno)   action is the raw libseccomp value (SCMP_ACT_ERRNO(n) is
 *                              0x00050000|n, SCMP_ACT_TRACE(n) 0x7ff00000|n...); the errno
 *                              argument is informational and not used here.
 *   ARCH (s:token)             a libseccomp arch name ("x86_64", "x86", "aarch64"...).
 *   RULE (s:name, i:action, i:errno, i:nargs, {i:index, i:op SCMP_CMP_*, i:value, i:valueTwo}*)
 *                              action is raw as above; errno is informational.
 *   LOAD (i:flags)             kernel SECCOMP_FILTER_FLAG_* bits: TSYNC, LOG, SPEC_ALLOW.
 *
 * Policy that stays here because it depends on what libseccomp knows on this host,
 * the same way runc decides it:
 *   - a syscall name libseccomp cannot resolve is skipped (profiles list syscalls of
 *     other kernels and architectures);
 *   - a rule whose action equals the default action is skipped (libseccomp rejects it);
 *   - when one argument index appears more than once in a rule, each comparison becomes
 *     a rule of its own (they match as OR); otherwise all comparisons form one rule (AND).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <seccomp.h>

#include "exec.h"

#define FLAG_TSYNC 0x1u
#define FLAG_LOG 0x2u
#define FLAG_SPEC_ALLOW 0x4u
#define MAX_ARGS 6

static scmp_filter_ctx ctx;
static uint32_t default_action;

/* A filter compiled before the container process exists (berth_seccomp_prepare): the
 * INIT/ARCH/RULE ops are then no-ops and LOAD hands this program to the kernel. */
#define MAX_INSNS 32768
static struct sock_filter *precompiled;
static unsigned short precompiled_len;

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *what)
{
	char buf[256];
	snprintf(buf, sizeof(buf), fmt, what);
	snprintf(err, errlen, "%s: %s", buf, strerror(-rc));
	return rc;
}

/* sig: one letter per leading argument, 's' string or 'i' integer; the rest are integers. */
static int want_args(const struct plan_op *op, const char *sig, char *err, size_t errlen)
{
	unsigned n = (unsigned)strlen(sig);

	if (op->nargs < n) {
		snprintf(err, errlen, "seccomp op %u: expected %u arguments, got %u", op->code, n, op->nargs);
		return -EINVAL;
	}
	for (unsigned i = 0; i < op->nargs; i++) {
		int str = i < n && sig[i] == 's';
		if (op->args[i].is_str != str) {
			snprintf(err, errlen, "seccomp op %u: argument %u must be %s", op->code, i,
				 str ? "a string" : "an integer");
			return -EINVAL;
		}
	}
	return 0;
}

static int seccomp_init_op(const struct plan_op *op, char *err, size_t errlen)
{
	int rc;

	if ((rc = want_args(op, "i", err, errlen)) < 0)
		return rc;
	if (ctx)
		seccomp_release(ctx);
	default_action = (uint32_t)op->args[0].i;
	ctx = seccomp_init(default_action);
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init(default action 0x%08x): invalid action or out of memory",
			 default_action);
		return -EINVAL;
	}
	/* no_new_privs is a separate op in the plan; the kernel's own errno beats libseccomp's ECANCELED. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		return fail(err, errlen, rc, "seccomp_attr_set(%s)", "CTL_NNP");
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0)
		return fail(err, errlen, rc, "seccomp_attr_set(%s)", "API_SYSRAWRC");
	return 0;
}

static int seccomp_arch_op(const struct plan_op *op, char *err, size_t errlen)
{
	uint32_t arch;
	int rc;

	if ((rc = want_args(op, "s", err, errlen)) < 0)
		return rc;
	arch = seccomp_arch_resolve_name(op->args[0].s);
	if (arch == 0) {
		snprintf(err, errlen, "seccomp architecture \"%s\": not known to libseccomp %u.%u.%u",
			 op->args[0].s, SCMP_VER_MAJOR, SCMP_VER_MINOR, SCMP_VER_MICRO);
		return -EINVAL;
	}
	rc = seccomp_arch_add(ctx, arch);
	if (rc == -EDOM) {
		snprintf(err, errlen, "seccomp_arch_add(%s): its byte order differs from the native "
			 "architecture's, one filter cannot hold both", op->args[0].s);
		return rc;
	}
	if (rc < 0 && rc != -EEXIST)
		return fail(err, errlen, rc, "seccomp_arch_add(%s)", op->args[0].s);
	return 0;
}

static int seccomp_rule_op(const struct plan_op *op, char *err, size_t errlen)
{
	struct scmp_arg_cmp cmp[MAX_ARGS];
	unsigned seen[MAX_ARGS] = {0};
	const char *name;
	uint32_t action;
	int nr, rc, nargs, split = 0;

	if ((rc = want_args(op, "siii", err, errlen)) < 0)
		return rc;
	name = op->args[0].s;
	action = (uint32_t)op->args[1].i;
	nargs = (int)op->args[3].i;
	if (nargs < 0 || nargs > MAX_ARGS || op->nargs != 4 + 4 * nargs) {
		snprintf(err, errlen, "seccomp rule %s: bad argument count %d (at most %d comparisons)",
			 name, nargs, MAX_ARGS);
		return -EINVAL;
	}
	nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR || action == default_action)
		return 0;

	for (int i = 0; i < nargs; i++) {
		const struct plan_arg *a = &op->args[4 + 4 * i];
		int64_t index = a[0].i, cmpop = a[1].i;

		if (index < 0 || index >= MAX_ARGS || cmpop <= _SCMP_CMP_MIN || cmpop >= _SCMP_CMP_MAX) {
			snprintf(err, errlen, "seccomp rule %s: comparison %d: bad index %lld or operator %lld",
				 name, i, (long long)index, (long long)cmpop);
			return -EINVAL;
		}
		cmp[i].arg = (unsigned)index;
		cmp[i].op = (enum scmp_compare)cmpop;
		cmp[i].datum_a = (scmp_datum_t)a[2].i;
		cmp[i].datum_b = (scmp_datum_t)a[3].i;
		if (++seen[index] > 1)
			split = 1;
	}

	if (split) {
		for (int i = 0; i < nargs; i++) {
			rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[i]);
			if (rc < 0)
				return fail(err, errlen, rc, "seccomp_rule_add(%s)", name);
		}
		return 0;
	}
	rc = seccomp_rule_add_array(ctx, action, nr, (unsigned)nargs, cmp);
	if (rc < 0)
		return fail(err, errlen, rc, "seccomp_rule_add(%s)", name);
	return 0;
}

static int seccomp_load_op(const struct plan_op *op, char *err, size_t errlen)
{
	uint64_t flags;
	int rc;

	if ((rc = want_args(op, "i", err, errlen)) < 0)
		return rc;
	flags = (uint64_t)op->args[0].i;
	if (flags & ~(uint64_t)(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW)) {
		snprintf(err, errlen, "seccomp load: unsupported filter flags 0x%llx", (unsigned long long)flags);
		return -EINVAL;
	}
	if (precompiled) {
		struct sock_fprog prog = { .len = precompiled_len, .filter = precompiled };

		/* The SECCOMP_FILTER_FLAG_* bits are the plan's flag bits. */
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)flags, &prog) < 0) {
			rc = -errno;
			snprintf(err, errlen, "seccomp(SET_MODE_FILTER): %s%s", strerror(-rc),
				 rc == -EACCES ? " (needs no_new_privs or CAP_SYS_ADMIN)" : "");
			return rc;
		}
		return 0;
	}
	if ((flags & FLAG_TSYNC) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		return fail(err, errlen, rc, "seccomp_attr_set(%s)", "CTL_TSYNC");
	if ((flags & FLAG_LOG) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
		return fail(err, errlen, rc, "seccomp_attr_set(%s)", "CTL_LOG");
	if ((flags & FLAG_SPEC_ALLOW) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1)) < 0)
		return fail(err, errlen, rc, "seccomp_attr_set(%s)", "CTL_SSB");
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	ctx = NULL;
	if (rc < 0) {
		const char *why = rc == -EACCES ? " (needs no_new_privs or CAP_SYS_ADMIN)" : "";
		snprintf(err, errlen, "seccomp_load: %s%s", strerror(-rc), why);
		return rc;
	}
	return 0;
}

int berth_seccomp_op(const struct plan_op *op, char *err, size_t errlen)
{
	if (precompiled && op->code != OP_SECCOMP_LOAD)
		return 0;
	if (precompiled && op->code == OP_SECCOMP_LOAD)
		return seccomp_load_op(op, err, errlen);
	if (op->code != OP_SECCOMP_INIT && !ctx) {
		snprintf(err, errlen, "seccomp op %u before OP_SECCOMP_INIT", op->code);
		return -EINVAL;
	}
	switch (op->code) {
	case OP_SECCOMP_INIT:
		return seccomp_init_op(op, err, errlen);
	case OP_SECCOMP_ARCH:
		return seccomp_arch_op(op, err, errlen);
	case OP_SECCOMP_RULE:
		return seccomp_rule_op(op, err, errlen);
	case OP_SECCOMP_LOAD:
		return seccomp_load_op(op, err, errlen);
	default:
		snprintf(err, errlen, "op %u is not a seccomp op", op->code);
		return -EINVAL;
	}
}

/* ---- the precompiled filter and its cache ---- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The key of a filter: its ops (codes and arguments) and the libseccomp that compiles them. */
static uint64_t filter_key(const struct plan_op *ops, size_t first, size_t last)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned int ver[4] = { 1, SCMP_VER_MAJOR, SCMP_VER_MINOR, SCMP_VER_MICRO };

	h = fnv1a(h, ver, sizeof ver);
	for (size_t i = first; i <= last; i++) {
		h = fnv1a(h, &ops[i].code, sizeof ops[i].code);
		h = fnv1a(h, &ops[i].nargs, sizeof ops[i].nargs);
		for (uint16_t a = 0; a < ops[i].nargs; a++) {
			const struct plan_arg *arg = &ops[i].args[a];

			h = fnv1a(h, &arg->is_str, sizeof arg->is_str);
			if (arg->is_str)
				h = fnv1a(h, arg->s, (size_t)arg->len + 1);
			else
				h = fnv1a(h, &arg->i, sizeof arg->i);
		}
	}
	return h;
}

static int read_cached(const char *path)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	/* Only a regular file of ours: the cache dir is 0700, but be sure. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(struct sock_filter) || st.st_size > (off_t)(MAX_INSNS * sizeof(struct sock_filter))) {
		close(fd);
		return -1;
	}
	precompiled = malloc((size_t)st.st_size);
	n = precompiled ? read(fd, precompiled, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(precompiled);
		precompiled = NULL;
		return -1;
	}
	precompiled_len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	return 0;
}

/* Compiles ops[first..last-1] (INIT, ARCH, RULE) with libseccomp and exports the program. */
static int compile_now(const struct plan_op *ops, size_t first, size_t last)
{
	char err[BERTH_ERRLEN];
	int fd = -1, rc = -1;
	off_t size;

	for (size_t i = first; i < last; i++)
		if (berth_seccomp_op(&ops[i], err, sizeof err) < 0)
			goto out;
	fd = (int)syscall(SYS_memfd_create, "berth-seccomp", MFD_CLOEXEC);
	if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0)
		goto out;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) || size > (off_t)(MAX_INSNS * sizeof(struct sock_filter)))
		goto out;
	precompiled = malloc((size_t)size);
	if (!precompiled || pread(fd, precompiled, (size_t)size, 0) != size) {
		free(precompiled);
		precompiled = NULL;
		goto out;
	}
	precompiled_len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ctx) {
		seccomp_release(ctx);
		ctx = NULL;
	}
	return rc;
}

static void write_cache(const char *dir, const char *path)
{
	char tmp[4096];
	size_t size = (size_t)precompiled_len * sizeof(struct sock_filter);
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return;
	if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp)
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (write(fd, precompiled, size) != (ssize_t)size || close(fd) < 0 || rename(tmp, path) < 0)
		unlink(tmp);
}

void berth_seccomp_prepare(const struct plan_op *ops, size_t nops, const char *cache_dir)
{
	char path[4096];
	size_t first = nops, last = nops;

	for (size_t i = 0; i < nops; i++) {
		if (ops[i].code == OP_SECCOMP_INIT && first == nops)
			first = i;
		if (ops[i].code == OP_SECCOMP_LOAD) {
			last = i;
			break;
		}
	}
	if (first == nops || last == nops || last < first)
		return;
	for (size_t i = first + 1; i < last; i++)
		if (ops[i].code != OP_SECCOMP_ARCH && ops[i].code != OP_SECCOMP_RULE)
			return;
	if (cache_dir && *cache_dir &&
	    snprintf(path, sizeof path, "%s/%016llx.bpf", cache_dir, (unsigned long long)filter_key(ops, first, last)) < (int)sizeof path) {
		if (read_cached(path) == 0)
			return;
	} else {
		cache_dir = NULL;
	}
	/* Anything unexpected leaves the filter to be built in the container process as before,
	 * where a failure is reported with the op that caused it. */
	if (compile_now(ops, first, last) < 0)
		return;
	if (cache_dir)
		write_cache(cache_dir, path);
}
