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
#include <stdio.h>
#include <string.h>
#include <seccomp.h>

#include "exec.h"

#define FLAG_TSYNC 0x1u
#define FLAG_LOG 0x2u
#define FLAG_SPEC_ALLOW 0x4u
#define MAX_ARGS 6

static scmp_filter_ctx ctx;
static uint32_t default_action;

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
