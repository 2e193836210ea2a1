/*
 * berth-exec: executes a launch plan (plan.h) sent by the TypeScript runtime.
 *
 * This file: startup (sealed re-exec), the channel, plan parsing and validation,
 * the parent/child sections around OP_CLONE and the foreground loop.
 * The ops themselves are in exec-ops.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "exec.h"

#define MAX_MSG (64u << 20)

extern char **environ;

/* ---------------------------------------------------------------- helpers */

int berth_errf(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen && e)
		snprintf(err + n, errlen - (size_t)n, ": %s", strerror(e));
	return -e;
}

int berth_send_msg(int fd, uint32_t type, const void *payload, size_t len)
{
	uint32_t hdr[2] = { type, (uint32_t)len };
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof hdr },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	while (mh.msg_iovlen) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static void send_error(int chan, long index, int e, const char *msg)
{
	size_t mlen = strlen(msg);
	char buf[8 + BERTH_ERRLEN];
	int32_t idx = (int32_t)index, no = e;

	if (mlen > BERTH_ERRLEN)
		mlen = BERTH_ERRLEN;
	memcpy(buf, &idx, 4);
	memcpy(buf + 4, &no, 4);
	memcpy(buf + 8, msg, mlen);
	if (chan < 0 || berth_send_msg(chan, MSG_ERROR, buf, 8 + mlen) < 0)
		fprintf(stderr, "berth-exec: op %ld: %s\n", index, msg);
}

void berth_warn(struct exec_ctx *c, const char *fmt, ...)
{
	char text[BERTH_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	berth_send_msg(c->chan, MSG_WARNING, text, strlen(text));
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, (char *)buf + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		off += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* a non-blocking pty master that is full: wait for room, lose nothing */
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				if (poll(&p, 1, -1) < 0 && errno != EINTR)
					return -errno;
				continue;
			}
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads one message; *payload is malloc'd and NUL-terminated (len excludes the NUL). */
static int read_msg(int fd, uint32_t *type, char **payload, uint32_t *len)
{
	uint32_t hdr[2];
	int r = read_full(fd, hdr, sizeof hdr);

	if (r < 0)
		return r;
	if (hdr[1] > MAX_MSG)
		return -EMSGSIZE;
	*payload = malloc((size_t)hdr[1] + 1);
	if (!*payload)
		return -ENOMEM;
	r = read_full(fd, *payload, hdr[1]);
	if (r < 0) {
		free(*payload);
		*payload = NULL;
		return r;
	}
	(*payload)[hdr[1]] = 0;
	*type = hdr[0];
	*len = hdr[1];
	return 0;
}

/* ------------------------------------------------------------- startup */

/*
 * CVE-2019-5736: a container process must not be able to open our binary through
 * /proc/<pid>/exe and overwrite it. Run from a sealed, read-only memfd copy instead.
 */
static void reexec_sealed(char **argv, int chan)
{
	struct stat st;
	int src, mfd;
	off_t off = 0;
	char err[BERTH_ERRLEN];

	src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &st) < 0) {
		berth_errf(err, sizeof err, errno, "re-exec: open /proc/self/exe");
		goto fail;
	}
	mfd = memfd_create("berth-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		berth_errf(err, sizeof err, errno, "re-exec: memfd_create");
		goto fail;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
		if (n <= 0) {
			berth_errf(err, sizeof err, n < 0 ? errno : EIO, "re-exec: copy /proc/self/exe");
			goto fail;
		}
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		berth_errf(err, sizeof err, errno, "re-exec: seal the copy of /proc/self/exe");
		goto fail;
	}
	close(src);
	if (setenv("_BERTH_CLONED", "1", 1) < 0) {
		berth_errf(err, sizeof err, errno, "re-exec: setenv");
		goto fail;
	}
	fexecve(mfd, argv, environ);
	berth_errf(err, sizeof err, errno, "re-exec: fexecve the sealed copy");
fail:
	send_error(chan, -1, errno, err);
	exit(1);
}

/* The marker alone could be inherited from a caller's environment: check the binary too. */
static int running_sealed(void)
{
	char exe[64];
	ssize_t n;

	if (!getenv("_BERTH_CLONED"))
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0)
		return 0;
	exe[n] = 0;
	return strncmp(exe, "/memfd:berth-exec", 17) == 0;
}

/* ------------------------------------------------------------- plan parsing */

struct op_spec {
	uint16_t code;
	const char *name;
	const char *sig;      /* fixed arguments: 's' string, 'i' integer */
	int count_idx;        /* index of the argument that counts the repeated group, or -1 */
	const char *group;    /* kinds of one repeated group */
	char rest;            /* kind of the trailing arguments ('s'), 0: none allowed */
};

static const struct op_spec op_specs[] = {
	{ OP_CGROUP_JOIN, "CGROUP_JOIN", "s", -1, NULL, 0 },
	{ OP_SETNS, "SETNS", "si", -1, NULL, 0 },
	{ OP_CONSOLE_SOCKET, "CONSOLE_SOCKET", "s", -1, NULL, 0 },
	{ OP_DEVICE_BPF, "DEVICE_BPF", "sss", -1, NULL, 0 },
	{ OP_MKFIFO, "MKFIFO", "si", -1, NULL, 0 },
	{ OP_CLONE, "CLONE", "i", -1, NULL, 0 },
	{ OP_UIDMAP, "UIDMAP", "s", -1, NULL, 0 },
	{ OP_GIDMAP, "GIDMAP", "s", -1, NULL, 0 },
	{ OP_SETGROUPS_DENY, "SETGROUPS_DENY", "", -1, NULL, 0 },
	{ OP_FOREGROUND, "FOREGROUND", "", -1, NULL, 0 },
	{ OP_CHILD, "CHILD", "", -1, NULL, 0 },
	{ OP_SETSID, "SETSID", "", -1, NULL, 0 },
	{ OP_MOUNT, "MOUNT", "sssisi", -1, NULL, 0 },
	{ OP_ROOTFS, "ROOTFS", "s", -1, NULL, 0 },
	{ OP_MKDIR, "MKDIR", "si", -1, NULL, 0 },
	{ OP_MKNOD, "MKNOD", "siiiii", -1, NULL, 0 },
	{ OP_BIND_DEVICE, "BIND_DEVICE", "ss", -1, NULL, 0 },
	{ OP_SYMLINK, "SYMLINK", "ss", -1, NULL, 0 },
	{ OP_SYNC, "SYNC", "s", -1, NULL, 0 },
	{ OP_HOOK, "HOOK", "sii", 2, "s", 's' },
	{ OP_PIVOT_ROOT, "PIVOT_ROOT", "s", -1, NULL, 0 },
	{ OP_MOVE_ROOT, "MOVE_ROOT", "s", -1, NULL, 0 },
	{ OP_MASK_PATH, "MASK_PATH", "s", -1, NULL, 0 },
	{ OP_READONLY_PATH, "READONLY_PATH", "s", -1, NULL, 0 },
	{ OP_SYSCTL, "SYSCTL", "ss", -1, NULL, 0 },
	{ OP_HOSTNAME, "HOSTNAME", "s", -1, NULL, 0 },
	{ OP_DOMAINNAME, "DOMAINNAME", "s", -1, NULL, 0 },
	{ OP_RLIMIT, "RLIMIT", "iii", -1, NULL, 0 },
	{ OP_OOM_SCORE_ADJ, "OOM_SCORE_ADJ", "i", -1, NULL, 0 },
	{ OP_REMOUNT_RO, "REMOUNT_RO", "s", -1, NULL, 0 },
	{ OP_CONSOLE, "CONSOLE", "ii", -1, NULL, 0 },
	{ OP_FIFO_OPEN, "FIFO_OPEN", "s", -1, NULL, 0 },
	{ OP_WAIT_START, "WAIT_START", "", -1, NULL, 0 },
	{ OP_APPARMOR, "APPARMOR", "s", -1, NULL, 0 },
	{ OP_SELINUX, "SELINUX", "s", -1, NULL, 0 },
	{ OP_NO_NEW_PRIVS, "NO_NEW_PRIVS", "", -1, NULL, 0 },
	{ OP_UMASK, "UMASK", "i", -1, NULL, 0 },
	{ OP_CHDIR, "CHDIR", "s", -1, NULL, 0 },
	{ OP_USER, "USER", "iii", 2, "i", 0 },
	{ OP_CAPS, "CAPS", "iiiii", -1, NULL, 0 },
	{ OP_NEW_KEYRING, "NEW_KEYRING", "s", -1, NULL, 0 },
	{ OP_SECCOMP_INIT, "SECCOMP_INIT", "ii", -1, NULL, 0 },
	{ OP_SECCOMP_ARCH, "SECCOMP_ARCH", "s", -1, NULL, 0 },
	{ OP_SECCOMP_RULE, "SECCOMP_RULE", "siii", 3, "iiii", 0 },
	{ OP_SECCOMP_LOAD, "SECCOMP_LOAD", "i", -1, NULL, 0 },
	{ OP_PERSONALITY, "PERSONALITY", "i", -1, NULL, 0 },
	{ OP_IOPRIO, "IOPRIO", "ii", -1, NULL, 0 },
	{ OP_SCHEDULER, "SCHEDULER", "iiiiiii", -1, NULL, 0 },
	{ OP_CPU_AFFINITY, "CPU_AFFINITY", "i", 0, "i", 0 },
	{ OP_CLOSE_FDS, "CLOSE_FDS", "i", -1, NULL, 0 },
	{ OP_EXEC, "EXEC", "si", 1, "s", 's' },
};

static const struct op_spec *find_spec(uint16_t code)
{
	for (size_t i = 0; i < sizeof op_specs / sizeof op_specs[0]; i++)
		if (op_specs[i].code == code)
			return &op_specs[i];
	return NULL;
}

static int check_args(const struct plan_op *op, const struct op_spec *sp, char *err, size_t errlen)
{
	size_t nfixed = strlen(sp->sig), k = 0;

	if (op->nargs < nfixed)
		return berth_errf(err, errlen, 0, "plan: %s needs at least %zu arguments, got %u",
				  sp->name, nfixed, op->nargs), -EINVAL;
	for (; k < nfixed; k++)
		if (op->args[k].is_str != (sp->sig[k] == 's'))
			goto kind;
	if (sp->count_idx >= 0) {
		int64_t n = op->args[sp->count_idx].i;
		size_t glen = strlen(sp->group);

		if (n < 0 && op->code == OP_USER)
			n = 0;
		if (n < 0 || (uint64_t)n > (uint64_t)(op->nargs - nfixed) / glen)
			return berth_errf(err, errlen, 0, "plan: %s: argument %d (count %lld) does not match the %u arguments",
					  sp->name, sp->count_idx, (long long)op->args[sp->count_idx].i, op->nargs), -EINVAL;
		for (int64_t g = 0; g < n; g++)
			for (size_t j = 0; j < glen; j++, k++)
				if (op->args[k].is_str != (sp->group[j] == 's'))
					goto kind;
	}
	for (; k < op->nargs; k++) {
		if (!sp->rest)
			return berth_errf(err, errlen, 0, "plan: %s takes %zu arguments, got %u", sp->name, k, op->nargs),
			       -EINVAL;
		if (op->args[k].is_str != (sp->rest == 's'))
			goto kind;
	}
	return 0;
kind:
	berth_errf(err, errlen, 0, "plan: %s: argument %zu must be %s", sp->name, k,
		   op->args[k].is_str ? "an integer" : "a string");
	return -EINVAL;
}

/*
 * Parses "BRTP" u32 version op* into ops (allocated); strings point into buf.
 * On error returns -errno, *bad_index is the op at fault (-1: the header).
 */
static int parse_plan(char *buf, size_t len, struct plan_op **out, size_t *nout,
		      long *bad_index, char *err, size_t errlen)
{
	size_t nops = 0, nargs = 0, off, ai = 0, oi = 0;
	uint32_t version;
	struct plan_op *ops;
	struct plan_arg *args;

	*bad_index = -1;
	if (len < 8 || memcmp(buf, BERTH_PLAN_MAGIC, 4) != 0)
		return berth_errf(err, errlen, 0, "plan: bad magic"), -EINVAL;
	memcpy(&version, buf + 4, 4);
	if (version != BERTH_PLAN_VERSION)
		return berth_errf(err, errlen, 0, "plan: version %u, this berth-exec speaks %d", version,
				  BERTH_PLAN_VERSION), -EINVAL;

	/* First pass: bounds and counts. */
	for (off = 8; off < len; nops++) {
		uint16_t n;

		*bad_index = (long)nops;
		if (len - off < 4)
			goto truncated;
		memcpy(&n, buf + off + 2, 2);
		off += 4;
		for (uint16_t a = 0; a < n; a++, nargs++) {
			uint32_t slen;

			if (off >= len)
				goto truncated;
			if (buf[off] == 0) {
				if (len - off < 9)
					goto truncated;
				off += 9;
			} else if (buf[off] == 1) {
				if (len - off < 5)
					goto truncated;
				memcpy(&slen, buf + off + 1, 4);
				if ((size_t)slen + 1 > len - off - 5)
					goto truncated;
				if (buf[off + 5 + slen] != 0)
					return berth_errf(err, errlen, 0, "plan: argument %u of op %zu is not NUL-terminated",
							  a, nops), -EINVAL;
				off += 5 + (size_t)slen + 1;
			} else {
				return berth_errf(err, errlen, 0, "plan: argument %u of op %zu has unknown kind %d", a,
						  nops, buf[off]), -EINVAL;
			}
		}
	}

	ops = calloc(nops ? nops : 1, sizeof *ops);
	args = calloc(nargs ? nargs : 1, sizeof *args);
	if (!ops || !args)
		return berth_errf(err, errlen, ENOMEM, "plan"), -ENOMEM;

	for (off = 8; off < len; oi++) {
		uint16_t code, n;

		memcpy(&code, buf + off, 2);
		memcpy(&n, buf + off + 2, 2);
		off += 4;
		ops[oi].code = code;
		ops[oi].nargs = n;
		ops[oi].args = &args[ai];
		for (uint16_t a = 0; a < n; a++, ai++) {
			if (buf[off] == 0) {
				args[ai].is_str = 0;
				memcpy(&args[ai].i, buf + off + 1, 8);
				off += 9;
			} else {
				args[ai].is_str = 1;
				memcpy(&args[ai].len, buf + off + 1, 4);
				args[ai].s = buf + off + 5;
				off += 5 + (size_t)args[ai].len + 1;
			}
		}
	}
	*out = ops;
	*nout = nops;
	return 0;
truncated:
	return berth_errf(err, errlen, 0, "plan: truncated in op %zu", nops), -EINVAL;
}

/* Checks kinds and the section structure; returns the index of OP_CLONE/OP_CHILD. */
static int validate_plan(const struct plan_op *ops, size_t nops, long *clone_idx, long *child_idx,
			 long *bad_index, char *err, size_t errlen)
{
	*clone_idx = *child_idx = -1;
	for (size_t i = 0; i < nops; i++) {
		const struct op_spec *sp = find_spec(ops[i].code);
		int r;

		*bad_index = (long)i;
		if (!sp)
			return berth_errf(err, errlen, 0, "plan: unknown op %u", ops[i].code), -EINVAL;
		r = check_args(&ops[i], sp, err, errlen);
		if (r < 0)
			return r;
		switch (ops[i].code) {
		case OP_CLONE:
			if (*clone_idx >= 0)
				return berth_errf(err, errlen, 0, "plan: more than one CLONE"), -EINVAL;
			*clone_idx = (long)i;
			break;
		case OP_CHILD:
			if (*clone_idx < 0 || *child_idx >= 0)
				return berth_errf(err, errlen, 0, "plan: CHILD must follow one CLONE"), -EINVAL;
			*child_idx = (long)i;
			break;
		case OP_UIDMAP:
		case OP_GIDMAP:
		case OP_SETGROUPS_DENY:
		case OP_FOREGROUND:
			if (*clone_idx < 0 || *child_idx >= 0)
				return berth_errf(err, errlen, 0, "plan: %s belongs between CLONE and CHILD", sp->name),
				       -EINVAL;
			break;
		default:
			break;
		}
	}
	*bad_index = -1;
	if (*clone_idx >= 0 && *child_idx < 0)
		return berth_errf(err, errlen, 0, "plan: CLONE without CHILD"), -EINVAL;
	return 0;
}

/* ------------------------------------------------------------- sections */

static int has_op(const struct plan_op *ops, size_t nops, uint16_t code)
{
	for (size_t i = 0; i < nops; i++)
		if (ops[i].code == code)
			return 1;
	return 0;
}

int berth_child_done(struct exec_ctx *c, char *err, size_t errlen)
{
	int r;

	if (c->done_sent || !c->in_child)
		return 0;
	r = berth_send_msg(c->chan, MSG_CHILD_DONE, NULL, 0);
	if (r < 0)
		return berth_errf(err, errlen, -r, "send MSG_CHILD_DONE");
	c->done_sent = 1;
	if (c->sync >= 0) {
		if (write_full(c->sync, "D", 1) < 0) {
			/* the parent is gone: nothing waits for us any more */
		}
		close(c->sync);
		c->sync = -1;
	}
	return 0;
}

static void run_ops(struct exec_ctx *c, size_t from, size_t to)
{
	char err[BERTH_ERRLEN];

	for (size_t i = from; i < to; i++) {
		int r;

		err[0] = 0;
		r = berth_run_op(c, i, err, sizeof err);
		if (r < 0) {
			send_error(c->chan, (long)i, -r, err);
			if (c->in_child && c->sync >= 0)
				write_full(c->sync, "E", 1);
			_exit(1);
		}
	}
}

static int write_proc_file(pid_t pid, const char *name, const char *data, size_t len, char *err, size_t errlen)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_errf(err, errlen, errno, "open %s", path);
	r = write_full(fd, data, len);
	close(fd);
	if (r < 0)
		return berth_errf(err, errlen, -r, "write %s", path);
	return 0;
}

static void kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void describe_status(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", status);
}

/* Receives one fd sent with SCM_RIGHTS (non-blocking); -1 when there is none. */
static int recv_fd_nowait(int sock)
{
	char data[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

static void copy_winsize(int from, int to)
{
	struct winsize ws;

	if (ioctl(from, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		ioctl(to, TIOCSWINSZ, &ws);
}

/* Moves what is readable from one fd to another: 1 moved, 2 nothing yet, 0 EOF/EIO. */
static int pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 2;
	if (n <= 0)
		return 0;
	if (write_full(to, buf, (size_t)n) < 0)
		return 0;
	return 1;
}

/*
 * OP_FOREGROUND after MSG_CHILD_DONE: forward signals, proxy the pty (if we own it),
 * reap the child and report its wait status.
 */
static void foreground(struct exec_ctx *c, pid_t child, const sigset_t *fwd, int console_peer)
{
	struct termios saved;
	int raw = 0, master = -1, sfd, status = 0, in_open = 0;

	sfd = signalfd(-1, fwd, SFD_CLOEXEC);
	if (sfd < 0) {
		send_error(c->chan, -1, errno, "foreground: signalfd failed");
		kill_child(child);
		exit(1);
	}
	if (console_peer >= 0) {
		master = recv_fd_nowait(console_peer);
		close(console_peer);
	}
	if (master >= 0) {
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		in_open = 1;
		if (isatty(0) && tcgetattr(0, &saved) == 0) {
			struct termios t = saved;

			cfmakeraw(&t);
			if (tcsetattr(0, TCSANOW, &t) == 0)
				raw = 1;
			copy_winsize(0, master);
		}
	}

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = in_open ? 0 : -1, .events = POLLIN },
			{ .fd = master, .events = POLLIN },
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGCHLD) {
					pid_t w = waitpid(child, &status, WNOHANG);
					if (w == child)
						break;
					if (w < 0 && errno == ECHILD)
						break;
				} else if (si.ssi_signo == SIGWINCH && master >= 0) {
					copy_winsize(0, master);
				} else {
					kill(child, (int)si.ssi_signo);
				}
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			if (!pump(0, master))
				in_open = 0;
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			if (!pump(master, 1)) {
				close(master);
				master = -1;
				in_open = 0;
			}
	}
	if (master >= 0)
		while (pump(master, 1) == 1)
			;
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	{
		int32_t st = status;
		berth_send_msg(c->chan, MSG_EXIT, &st, sizeof st);
	}
	exit(0);
}

/*
 * What a foreground parent forwards to the container, as runc does: every signal but those
 * that cannot be caught, that report our own faults (a blocked SIGSEGV would hang us), that
 * our own writes raise (SIGPIPE) and that drive our own job control (SIGTSTP/TTIN/TTOU).
 * SIGCHLD and SIGWINCH stay in the set: foreground() reads them from its signalfd too.
 */
static void forwarded_signals(sigset_t *set)
{
	static const int own[] = { SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS,
				   SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG };

	sigfillset(set);
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
		sigdelset(set, own[i]);
	/* glibc keeps the first real-time signals for itself. */
	for (int sig = SIGRTMIN > 32 ? 32 : SIGRTMIN; sig < SIGRTMIN; sig++)
		sigdelset(set, sig);
}

/* struct clone_args of clone3(2), up to .cgroup (CLONE_ARGS_SIZE_VER2). */
struct berth_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};
#define BERTH_CLONE_INTO_CGROUP 0x200000000ULL

/*
 * Raw clone with fork semantics: one child gets every new namespace (pid 1 in a new pid ns).
 * Sets *unshare_cgroupns when the child must create its cgroup namespace itself.
 */
static pid_t clone_child(struct exec_ctx *c, unsigned long flags, int *unshare_cgroupns)
{
	char err[BERTH_ERRLEN];

	*unshare_cgroupns = 0;
	/* CLONE_NEWTIME shares its bit with the exit signal in clone(2): unshare it here instead;
	 * the child is the first process of the new time namespace. */
	if (flags & CLONE_NEWTIME) {
		if (unshare(CLONE_NEWTIME) < 0)
			return -1;
		flags &= ~(unsigned long)CLONE_NEWTIME;
	}
	if (c->clone_cgroup >= 0) {
		/* clone3 makes the new cgroup namespace before it moves the child into the cgroup,
		 * which would root the namespace at our cgroup: the child unshares it instead, as
		 * its first act, once it is where it belongs. */
		struct berth_clone_args args = {
			.flags = (flags & ~(unsigned long)CLONE_NEWCGROUP) | BERTH_CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)c->clone_cgroup,
		};
		pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);

		if (pid >= 0) {
			*unshare_cgroupns = (flags & CLONE_NEWCGROUP) != 0;
			return pid;
		}
		/* No clone3 or no CLONE_INTO_CGROUP (kernel < 5.7), or the kernel refused: join the
		 * plain way, which names the cgroup if that is what fails, and clone as usual. */
		int r;

		err[0] = 0;
		r = berth_join_cgroup_procs(c->ops[c->clone_cgroup_index].args[0].s, err, sizeof err);
		if (r < 0) {
			send_error(c->chan, c->clone_cgroup_index, -r, err);
			return -2;
		}
	}
	return (pid_t)syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), NULL, NULL, NULL, 0UL);
}

static int run_with_clone(struct exec_ctx *c, size_t clone_idx, size_t child_idx)
{
	const struct plan_op *ops = c->ops;
	int sp[2], cons[2] = { -1, -1 };
	int foreground_mode = has_op(ops, c->nops, OP_FOREGROUND);
	sigset_t fwd, old;
	pid_t pid;
	int unshare_cgroupns;
	char err[BERTH_ERRLEN];
	char ch;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		send_error(c->chan, (long)clone_idx, errno, "clone: socketpair failed");
		return 1;
	}
	if (foreground_mode && has_op(ops, c->nops, OP_CONSOLE) && !has_op(ops, c->nops, OP_CONSOLE_SOCKET)) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cons) < 0) {
			send_error(c->chan, (long)clone_idx, errno, "clone: console socketpair failed");
			return 1;
		}
		c->console_sock = cons[1];
	}

	/* Block the forwarded signals before the clone so none is lost; the child unblocks. */
	sigemptyset(&fwd);
	if (foreground_mode)
		forwarded_signals(&fwd);
	sigprocmask(SIG_BLOCK, &fwd, &old);

	pid = clone_child(c, (unsigned long)ops[clone_idx].args[0].i, &unshare_cgroupns);
	if (c->clone_cgroup >= 0) {
		close(c->clone_cgroup);
		c->clone_cgroup = -1;
	}
	if (pid == -2)
		return 1;
	if (pid < 0) {
		berth_errf(err, sizeof err, errno, "clone with flags 0x%llx",
			   (unsigned long long)ops[clone_idx].args[0].i);
		send_error(c->chan, (long)clone_idx, errno, err);
		return 1;
	}

	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(sp[0]);
		if (cons[0] >= 0)
			close(cons[0]);
		c->sync = sp[1];
		c->in_child = 1;
		if (unshare_cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
			send_error(c->chan, (long)clone_idx, errno, "unshare the cgroup namespace failed");
			write_full(c->sync, "E", 1);
			_exit(1);
		}
		if (read(c->sync, &ch, 1) != 1 || ch != 'G')
			_exit(1);
		run_ops(c, child_idx + 1, c->nops);
		if (berth_child_done(c, err, sizeof err) < 0)
			_exit(1);
		_exit(0);
	}

	close(sp[1]);
	if (cons[1] >= 0)
		close(cons[1]);
	if (c->console_sock >= 0 && c->console_sock != cons[1])
		close(c->console_sock);
	c->console_sock = -1;

	for (size_t i = clone_idx + 1; i < child_idx; i++) {
		const struct plan_op *op = &ops[i];
		int r = 0;

		err[0] = 0;
		switch (op->code) {
		case OP_UIDMAP:
			r = write_proc_file(pid, "uid_map", op->args[0].s, op->args[0].len, err, sizeof err);
			break;
		case OP_GIDMAP:
			r = write_proc_file(pid, "gid_map", op->args[0].s, op->args[0].len, err, sizeof err);
			break;
		case OP_SETGROUPS_DENY:
			r = write_proc_file(pid, "setgroups", "deny", 4, err, sizeof err);
			break;
		case OP_FOREGROUND:
			break;
		default:
			r = berth_run_op(c, i, err, sizeof err);
			break;
		}
		if (r < 0) {
			send_error(c->chan, (long)i, -r, err);
			kill_child(pid);
			return 1;
		}
	}

	{
		int32_t p32 = pid;
		int r = berth_send_msg(c->chan, MSG_PID, &p32, sizeof p32);
		if (r < 0) {
			kill_child(pid);
			return 1;
		}
	}
	if (write_full(sp[0], "G", 1) < 0) {
		send_error(c->chan, (long)child_idx, errno, "release the container process failed");
		kill_child(pid);
		return 1;
	}

	do
		n = read(sp[0], &ch, 1);
	while (n < 0 && errno == EINTR);
	close(sp[0]);
	if (n != 1 || ch != 'D') {
		int status = 0;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (n != 1 || ch != 'E') {
			char how[128];

			describe_status(how, sizeof how, status);
			snprintf(err, sizeof err, "the container process %s before it was ready", how);
			send_error(c->chan, -1, 0, err);
		}
		return 1;
	}
	if (foreground_mode)
		foreground(c, pid, &fwd, cons[0]);
	return 0;
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct exec_ctx c = { .chan = -1, .sync = -1, .console_sock = -1, .fifo = -1,
			      .rootfs = "/", .exec_index = -1, .clone_cgroup = -1 };
	const char *chan_env = getenv("_BERTH_CHANNEL_FD");
	char err[BERTH_ERRLEN];
	char *plan = NULL;
	uint32_t type, len;
	struct plan_op *ops = NULL;
	size_t nops = 0;
	long clone_idx, child_idx, bad;
	char *end;
	long fd;
	int r;

	(void)argc;
	if (!chan_env || !*chan_env) {
		fprintf(stderr, "berth-exec: _BERTH_CHANNEL_FD is not set; berth-exec is started by the berth runtime\n");
		return 2;
	}
	fd = strtol(chan_env, &end, 10);
	if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr, "berth-exec: _BERTH_CHANNEL_FD=%s is not an open fd\n", chan_env);
		return 2;
	}
	c.chan = (int)fd;
	/* The channel comes right after the preserved fds: anything above it was leaked to us by
	 * whoever started berth and must not reach hooks or the container. */
	syscall(SYS_close_range, (unsigned int)c.chan + 1, ~0U, 0);
	/* A closed stdout (run -t | head) or channel must be an EPIPE we handle, not our death;
	 * the container's process gets an empty signal mask again before it execs. */
	{
		sigset_t pipe;

		sigemptyset(&pipe);
		sigaddset(&pipe, SIGPIPE);
		sigprocmask(SIG_BLOCK, &pipe, NULL);
	}

	if (!running_sealed())
		reexec_sealed(argv, c.chan);

	/* A successful execve must close the channel: that is how Node learns it happened. */
	if (fcntl(c.chan, F_SETFD, FD_CLOEXEC) < 0) {
		send_error(c.chan, -1, errno, "channel: set FD_CLOEXEC failed");
		return 1;
	}
	/* Not dumpable while we may sit in the container's namespaces (execve resets it). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		send_error(c.chan, -1, errno, "prctl(PR_SET_DUMPABLE) failed");
		return 1;
	}

	r = read_msg(c.chan, &type, &plan, &len);
	if (r < 0) {
		berth_errf(err, sizeof err, -r, "read the plan from the channel");
		send_error(c.chan, -1, -r, err);
		return 1;
	}
	if (type != MSG_PLAN) {
		snprintf(err, sizeof err, "channel: expected MSG_PLAN, got message type %u", type);
		send_error(c.chan, -1, EPROTO, err);
		return 1;
	}
	r = parse_plan(plan, len, &ops, &nops, &bad, err, sizeof err);
	if (r == 0)
		r = validate_plan(ops, nops, &clone_idx, &child_idx, &bad, err, sizeof err);
	if (r < 0) {
		send_error(c.chan, bad, -r, err);
		return 1;
	}
	c.ops = ops;
	c.nops = nops;
	c.will_clone = clone_idx >= 0;
	for (size_t i = 0; i < nops; i++)
		if (ops[i].code == OP_EXEC)
			c.exec_index = (long)i;

	berth_seccomp_prepare(ops, nops, getenv("_BERTH_SECCOMP_CACHE"));
	if (clone_idx < 0) {
		run_ops(&c, 0, nops);
		return 0;
	}
	run_ops(&c, 0, (size_t)clone_idx);
	return run_with_clone(&c, (size_t)clone_idx, (size_t)child_idx);
}
