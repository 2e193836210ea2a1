/*
 * berth-probe: runs as a container's process and reports what it sees as one
 * JSON object, so integration tests can check a runtime from the outside.
 * Static, dependency-free. Usage:
 *   berth-probe report [--out FILE] [--sysctl KEY]... [--read PATH]...
 *               [--try-write PATH]... [--try-syscall NAME[:ARG]]...
 *               [--sleep N] [--exit N]
 *   berth-probe sleep N | exit N | fds [--out FILE]
 *   berth-probe signals            "ready", then one caught signal name per line until SIGTERM
 *   berth-probe write-exe [--seconds N] [--out FILE] [PATH]...
 *                                  CVE-2019-5736 check: try to open /proc/[0-9]*\/exe (and PATHs)
 *                                  for writing; never writes a byte
 *   berth-probe cat                copy stdin to stdout
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- a growing buffer and a tiny JSON writer ---- */

static char *buf;
static size_t buf_len, buf_cap;

static void put(const char *s, size_t n)
{
	if (buf_len + n + 1 > buf_cap) {
		size_t cap = buf_cap ? buf_cap : 65536;
		while (buf_len + n + 1 > cap)
			cap *= 2;
		char *nb = realloc(buf, cap);
		if (!nb) {
			fputs("berth-probe: out of memory\n", stderr);
			_exit(125);
		}
		buf = nb;
		buf_cap = cap;
	}
	memcpy(buf + buf_len, s, n);
	buf_len += n;
	buf[buf_len] = 0;
}

static void puts_(const char *s) { put(s, strlen(s)); }

/* need_comma[depth]: whether the next value at this depth needs a comma. */
static int need_comma[64];
static int depth;
static int after_key;

static void sep(void)
{
	if (after_key) {
		after_key = 0;
		return;
	}
	if (need_comma[depth])
		put(",", 1);
	need_comma[depth] = 1;
}

static void jstr_raw(const char *s, size_t n)
{
	put("\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(esc, 2);
		} else if (c == '\n') {
			put("\\n", 2);
		} else if (c == '\t') {
			put("\\t", 2);
		} else if (c < 0x20 || c >= 0x7f) {
			/* Bytes, not code points: keeps the output valid JSON for any input. */
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(esc, 6);
		} else {
			put((const char *)&c, 1);
		}
	}
	put("\"", 1);
}

static void jstring(const char *s)
{
	sep();
	if (!s) {
		puts_("null");
		return;
	}
	jstr_raw(s, strlen(s));
}

static void jstringn(const char *s, size_t n)
{
	sep();
	jstr_raw(s, n);
}

static void jint(long long v)
{
	char t[32];
	sep();
	snprintf(t, sizeof t, "%lld", v);
	puts_(t);
}

static void jnull(void)
{
	sep();
	puts_("null");
}

static void jkey(const char *k)
{
	sep();
	jstr_raw(k, strlen(k));
	put(":", 1);
	after_key = 1;
}

static void jopen(char c)
{
	sep();
	put(&c, 1);
	depth++;
	need_comma[depth] = 0;
}

static void jclose(char c)
{
	put(&c, 1);
	depth--;
}

static void jerror_obj(int err)
{
	jopen('{');
	jkey("error");
	jstring(strerror(err));
	jkey("errno");
	jint(err);
	jclose('}');
}

/* ---- small helpers ---- */

static char *read_file(const char *path, size_t *len_out, int *err_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err_out = errno;
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *b = malloc(cap);
	for (;;) {
		if (len >= (1 << 20))
			break; /* endless files (/dev/zero) */
		if (len + 1 >= cap) {
			cap *= 2;
			b = realloc(b, cap);
		}
		ssize_t r = read(fd, b + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*err_out = errno;
			close(fd);
			free(b);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	b[len] = 0;
	if (len_out)
		*len_out = len;
	*err_out = 0;
	return b;
}

static char *trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
	return s;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static const char *out_path;

static int emit(void)
{
	put("\n", 1);
	if (out_path) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s.tmp%d", out_path, (int)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, buf, buf_len) < 0 || close(fd) < 0 || rename(tmp, out_path) < 0) {
			fprintf(stderr, "berth-probe: write %s: %s\n", out_path, strerror(errno));
			return 125;
		}
		return 0;
	}
	if (write_all(1, buf, buf_len) < 0)
		return 125;
	return 0;
}

/* ---- report sections ---- */

static void report_status_fields(void)
{
	static const char *const keys[][2] = {
		{ "CapInh", "inheritable" }, { "CapPrm", "permitted" }, { "CapEff", "effective" },
		{ "CapBnd", "bounding" },    { "CapAmb", "ambient" },
	};
	int err;
	char *st = read_file("/proc/self/status", NULL, &err);
	char *capv[5] = { 0 };
	char *nnp = NULL, *seccomp = NULL;
	if (st) {
		for (char *line = strtok(st, "\n"); line; line = strtok(NULL, "\n")) {
			char *colon = strchr(line, ':');
			if (!colon)
				continue;
			*colon = 0;
			char *v = colon + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			for (int i = 0; i < 5; i++)
				if (!strcmp(line, keys[i][0]))
					capv[i] = v;
			if (!strcmp(line, "NoNewPrivs"))
				nnp = v;
			else if (!strcmp(line, "Seccomp"))
				seccomp = v;
		}
	}
	jkey("capabilities");
	jopen('{');
	for (int i = 0; i < 5; i++) {
		jkey(keys[i][1]);
		jstring(capv[i]);
	}
	jclose('}');
	jkey("noNewPrivs");
	if (nnp)
		jint(atoi(nnp));
	else
		jnull();
	jkey("seccomp");
	if (seccomp)
		jint(atoi(seccomp));
	else
		jnull();
	free(st);
}

static void report_namespaces(void)
{
	static const char *const ns[] = { "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
					  "time", "user", "uts" };
	jkey("namespaces");
	jopen('{');
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		char p[64], t[256];
		snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
		ssize_t n = readlink(p, t, sizeof t - 1);
		if (n < 0)
			continue;
		t[n] = 0;
		jkey(ns[i]);
		jstring(t);
	}
	jclose('}');
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && isdigit((unsigned char)r[1]) && isdigit((unsigned char)r[2]) &&
		    isdigit((unsigned char)r[3])) {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = 0;
}

static void report_mounts(void)
{
	int err;
	char *mi = read_file("/proc/self/mountinfo", NULL, &err);
	jkey("mounts");
	if (!mi) {
		jerror_obj(err);
		return;
	}
	jopen('[');
	char *save = NULL;
	for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[64];
		int nf = 0;
		char *s2 = NULL;
		for (char *tok = strtok_r(line, " ", &s2); tok && nf < 64; tok = strtok_r(NULL, " ", &s2))
			f[nf++] = tok;
		int dash = -1;
		for (int i = 6; i < nf; i++)
			if (!strcmp(f[i], "-")) {
				dash = i;
				break;
			}
		if (nf < 7 || dash < 0 || dash + 3 > nf)
			continue;
		for (int i = 0; i < nf; i++)
			unescape(f[i]);
		jopen('{');
		jkey("id");
		jint(atoll(f[0]));
		jkey("parent");
		jint(atoll(f[1]));
		jkey("majorMinor");
		jstring(f[2]);
		jkey("root");
		jstring(f[3]);
		jkey("mountPoint");
		jstring(f[4]);
		jkey("options");
		jstring(f[5]);
		jkey("propagation");
		jopen('[');
		for (int i = 6; i < dash; i++)
			jstring(f[i]);
		jclose(']');
		jkey("fstype");
		jstring(f[dash + 1]);
		jkey("source");
		jstring(f[dash + 2]);
		jkey("superOptions");
		jstring(dash + 3 < nf ? f[dash + 3] : "");
		jclose('}');
	}
	jclose(']');
	free(mi);
}

static const struct {
	int res;
	const char *name;
} rlimits[] = {
	{ RLIMIT_CPU, "RLIMIT_CPU" },		{ RLIMIT_FSIZE, "RLIMIT_FSIZE" },
	{ RLIMIT_DATA, "RLIMIT_DATA" },		{ RLIMIT_STACK, "RLIMIT_STACK" },
	{ RLIMIT_CORE, "RLIMIT_CORE" },		{ RLIMIT_RSS, "RLIMIT_RSS" },
	{ RLIMIT_NPROC, "RLIMIT_NPROC" },	{ RLIMIT_NOFILE, "RLIMIT_NOFILE" },
	{ RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK" },	{ RLIMIT_AS, "RLIMIT_AS" },
	{ RLIMIT_LOCKS, "RLIMIT_LOCKS" },	{ RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING" },
	{ RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE" }, { RLIMIT_NICE, "RLIMIT_NICE" },
	{ RLIMIT_RTPRIO, "RLIMIT_RTPRIO" },	{ RLIMIT_RTTIME, "RLIMIT_RTTIME" },
};

static void jrlim(rlim_t v)
{
	if (v == RLIM_INFINITY)
		jint(-1);
	else
		jint((long long)v);
}

static void report_rlimits(void)
{
	jkey("rlimits");
	jopen('{');
	for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
		struct rlimit rl;
		if (getrlimit(rlimits[i].res, &rl) < 0)
			continue;
		jkey(rlimits[i].name);
		jopen('{');
		jkey("soft");
		jrlim(rl.rlim_cur);
		jkey("hard");
		jrlim(rl.rlim_max);
		jclose('}');
	}
	jclose('}');
}

static void report_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	jkey("fds");
	if (!d) {
		jerror_obj(errno);
		return;
	}
	int self = dirfd(d);
	jopen('[');
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == self)
			continue;
		char p[64], t[PATH_MAX];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(p, t, sizeof t - 1);
		t[n < 0 ? 0 : n] = 0;
		jopen('{');
		jkey("fd");
		jint(fd);
		jkey("target");
		jstring(t);
		jclose('}');
	}
	closedir(d);
	jclose(']');
}

static void report_file_string(const char *key, const char *path)
{
	int err;
	char *c = read_file(path, NULL, &err);
	jkey(key);
	if (c)
		jstring(c);
	else
		jerror_obj(err);
	free(c);
}

static void report_cgroup_files(void)
{
	static const char *const files[] = {
		"/sys/fs/cgroup/memory.max",
		"/sys/fs/cgroup/memory.swap.max",
		"/sys/fs/cgroup/pids.max",
		"/sys/fs/cgroup/cpu.max",
		"/sys/fs/cgroup/cpu.weight",
		"/sys/fs/cgroup/cpuset.cpus",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes",
		"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
		"/sys/fs/cgroup/pids/pids.max",
		"/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
		"/sys/fs/cgroup/cpu/cpu.cfs_period_us",
		"/sys/fs/cgroup/cpu/cpu.shares",
		"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
		"/sys/fs/cgroup/cpuset/cpuset.cpus",
	};
	jkey("cgroupFiles");
	jopen('{');
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		int err;
		char *c = read_file(files[i], NULL, &err);
		if (!c)
			continue;
		jkey(files[i]);
		jstring(trim(c));
		free(c);
	}
	jclose('}');
}

static char type_char(mode_t m)
{
	if (S_ISCHR(m))
		return 'c';
	if (S_ISBLK(m))
		return 'b';
	if (S_ISDIR(m))
		return 'd';
	if (S_ISLNK(m))
		return 'l';
	if (S_ISFIFO(m))
		return 'p';
	if (S_ISSOCK(m))
		return 's';
	return 'f';
}

static void report_dev_dir(const char *dir, int recurse)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[PATH_MAX];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		char tc[2] = { type_char(st.st_mode), 0 };
		char mode[8];
		snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
		jopen('{');
		jkey("path");
		jstring(p);
		jkey("type");
		jstring(tc);
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			jkey("major");
			jint(major(st.st_rdev));
			jkey("minor");
			jint(minor(st.st_rdev));
		}
		if (S_ISLNK(st.st_mode)) {
			char t[PATH_MAX];
			ssize_t n = readlink(p, t, sizeof t - 1);
			t[n < 0 ? 0 : n] = 0;
			jkey("target");
			jstring(t);
		}
		jkey("mode");
		jstring(mode);
		jkey("uid");
		jint(st.st_uid);
		jkey("gid");
		jint(st.st_gid);
		jclose('}');
		if (recurse && S_ISDIR(st.st_mode))
			report_dev_dir(p, 0);
	}
	closedir(d);
}

/* ---- the option lists given on the command line ---- */

#define MAXOPT 64
static const char *sysctls[MAXOPT], *reads[MAXOPT], *writes[MAXOPT], *syscalls_[MAXOPT];
static int nsysctl, nread, nwrite, nsyscall;

static void report_sysctls(void)
{
	jkey("sysctls");
	jopen('{');
	for (int i = 0; i < nsysctl; i++) {
		char p[PATH_MAX];
		int n = snprintf(p, sizeof p, "/proc/sys/%s", sysctls[i]);
		for (int j = 10; j < n; j++)
			if (p[j] == '.')
				p[j] = '/';
		int err;
		char *c = read_file(p, NULL, &err);
		jkey(sysctls[i]);
		if (c)
			jstring(trim(c));
		else
			jerror_obj(err);
		free(c);
	}
	jclose('}');
}

static void report_reads(void)
{
	jkey("files");
	jopen('{');
	for (int i = 0; i < nread; i++) {
		int err;
		size_t len;
		char *c = read_file(reads[i], &len, &err);
		jkey(reads[i]);
		jopen('{');
		if (c) {
			jkey("content");
			jstringn(c, len);
		} else {
			jkey("error");
			jstring(strerror(err));
			jkey("errno");
			jint(err);
		}
		jclose('}');
		free(c);
	}
	jclose('}');
}

/* "ok" when the path could be opened for writing (a file) or a file created in it (a dir). */
static void report_writes(void)
{
	jkey("writable");
	jopen('{');
	for (int i = 0; i < nwrite; i++) {
		const char *p = writes[i];
		struct stat st;
		int err = 0;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			char f[PATH_MAX];
			snprintf(f, sizeof f, "%s/.berth-probe-%d", p, (int)getpid());
			int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0) {
				err = errno;
			} else {
				close(fd);
				unlink(f);
			}
		} else {
			int fd = open(p, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
			if (fd < 0)
				err = errno;
			else
				close(fd);
		}
		jkey(p);
		jstring(err ? strerror(err) : "ok");
	}
	jclose('}');
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EROFS: return "EROFS";
	case EBUSY: return "EBUSY";
	case ETXTBSY: return "ETXTBSY";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EFAULT: return "EFAULT";
	case ENOMEM: return "ENOMEM";
	case ENOSPC: return "ENOSPC";
	case EAGAIN: return "EAGAIN";
	case ESRCH: return "ESRCH";
	case EBADF: return "EBADF";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	default: return NULL;
	}
}

/*
 * NAME[:ARG]. Each case is reversible and harmless. Result: {"errno": n, "error": "ENAME"}.
 * mkdir[:path] (default /tmp/berth-probe-x, removed again), personality[:persona]
 * (default 0xffffffff = query), chown[:path] (to its own owner), getcwd, unshare[:flags]
 * (default 0), setuid (to its own uid), chmod[:path] (to its own mode).
 */
static int try_syscall(const char *name, const char *arg, int *unknown)
{
	long r;
	struct stat st;
	*unknown = 0;
	errno = 0;
	if (!strcmp(name, "mkdir")) {
		const char *p = arg ? arg : "/tmp/berth-probe-x";
		r = syscall(SYS_mkdirat, AT_FDCWD, p, 0700);
		if (r == 0)
			rmdir(p);
	} else if (!strcmp(name, "personality")) {
		unsigned long v = arg ? strtoul(arg, NULL, 0) : 0xffffffffUL;
		r = syscall(SYS_personality, v);
		if (r >= 0 && v != 0xffffffffUL)
			syscall(SYS_personality, (unsigned long)r);
	} else if (!strcmp(name, "chown")) {
		const char *p = arg ? arg : "/";
		if (stat(p, &st) < 0)
			return errno;
		r = syscall(SYS_fchownat, AT_FDCWD, p, st.st_uid, st.st_gid, 0);
	} else if (!strcmp(name, "chmod")) {
		const char *p = arg ? arg : "/";
		if (stat(p, &st) < 0)
			return errno;
		r = syscall(SYS_fchmodat, AT_FDCWD, p, st.st_mode & 07777);
	} else if (!strcmp(name, "getcwd")) {
		char t[PATH_MAX];
		r = syscall(SYS_getcwd, t, sizeof t);
	} else if (!strcmp(name, "unshare")) {
		r = syscall(SYS_unshare, arg ? strtol(arg, NULL, 0) : 0L);
	} else if (!strcmp(name, "setuid")) {
		r = syscall(SYS_setuid, getuid());
	} else if (!strcmp(name, "getpid")) {
		r = syscall(SYS_getpid);
	} else {
		*unknown = 1;
		return 0;
	}
	return r < 0 ? errno : 0;
}

static void report_syscalls(void)
{
	jkey("syscalls");
	jopen('{');
	for (int i = 0; i < nsyscall; i++) {
		char name[64];
		const char *arg = NULL;
		snprintf(name, sizeof name, "%s", syscalls_[i]);
		char *colon = strchr(name, ':');
		if (colon) {
			*colon = 0;
			arg = syscalls_[i] + (colon - name) + 1;
		}
		int unknown;
		int e = try_syscall(name, arg, &unknown);
		jkey(syscalls_[i]);
		jopen('{');
		if (unknown) {
			jkey("error");
			jstring("unknown syscall for berth-probe");
		} else {
			const char *en = errno_name(e);
			char t[32];
			if (!en) {
				snprintf(t, sizeof t, "E%d", e);
				en = t;
			}
			jkey("errno");
			jint(e);
			jkey("error");
			jstring(en);
		}
		jclose('}');
	}
	jclose('}');
}

static int g_argc;
static char **g_argv;
extern char **environ;

static void report(void)
{
	jopen('{');
	jkey("pid");
	jint(getpid());
	jkey("ppid");
	jint(getppid());
	jkey("uid");
	jint(getuid());
	jkey("gid");
	jint(getgid());
	jkey("euid");
	jint(geteuid());
	jkey("egid");
	jint(getegid());

	gid_t groups[256];
	int ng = getgroups(256, groups);
	jkey("groups");
	jopen('[');
	for (int i = 0; i < ng; i++)
		jint(groups[i]);
	jclose(']');

	mode_t um = umask(0);
	umask(um);
	char ums[8];
	snprintf(ums, sizeof ums, "%04o", (unsigned)um);
	jkey("umask");
	jstring(ums);

	char cwd[PATH_MAX];
	jkey("cwd");
	if (getcwd(cwd, sizeof cwd))
		jstring(cwd);
	else
		jerror_obj(errno);

	struct utsname u;
	uname(&u);
	jkey("hostname");
	jstring(u.nodename);
	jkey("domainname");
	jstring(u.domainname);

	report_status_fields();
	report_namespaces();
	report_mounts();
	report_rlimits();

	int err;
	char *oom = read_file("/proc/self/oom_score_adj", NULL, &err);
	jkey("oomScoreAdj");
	if (oom)
		jint(atoi(oom));
	else
		jnull();
	free(oom);

	jkey("env");
	jopen('[');
	for (char **e = environ; e && *e; e++)
		jstring(*e);
	jclose(']');

	jkey("argv");
	jopen('[');
	for (int i = 0; i < g_argc; i++)
		jstring(g_argv[i]);
	jclose(']');

	report_fds();
	report_file_string("cgroup", "/proc/self/cgroup");
	report_file_string("uidMap", "/proc/self/uid_map");
	report_file_string("gidMap", "/proc/self/gid_map");
	report_cgroup_files();

	jkey("devices");
	jopen('[');
	report_dev_dir("/dev", 1);
	jclose(']');

	report_sysctls();
	report_reads();
	report_writes();
	report_syscalls();
	jclose('}');
}

/* ---- other subcommands ---- */

static int cmd_signals(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		siginfo_t si;
		int s = sigwaitinfo(&all, &si);
		if (s < 0) {
			if (errno == EINTR)
				continue;
			return 125;
		}
		const char *n = sigabbrev_np(s);
		if (n)
			printf("SIG%s\n", n);
		else
			printf("SIG%d\n", s);
		fflush(stdout);
		if (s == SIGTERM)
			return 0;
	}
}

#define MAX_HELD 256

/*
 * Tries the two CVE-2019-5736 routes without ever writing: open(O_WRONLY) of every
 * /proc/[0-9]+/exe it can see (and PATHs), and re-opening earlier O_PATH handles
 * through /proc/self/fd once their process may have exited.
 */
static int cmd_write_exe(int argc, char **argv)
{
	double seconds = 0;
	const char *paths[MAXOPT];
	int npaths = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out_path = argv[++i];
		else if (npaths < MAXOPT)
			paths[npaths++] = argv[i];
	}
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int held[MAX_HELD], nheld = 0;
	long attempts = 0, scans = 0;
	jopen('{');
	jkey("successes");
	jopen('[');
	for (;;) {
		scans++;
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!isdigit((unsigned char)e->d_name[0]))
				continue;
			if (atoi(e->d_name) == getpid())
				continue;
			char p[300];
			snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
			attempts++;
			int fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				char t[PATH_MAX];
				ssize_t n = readlink(p, t, sizeof t - 1);
				t[n < 0 ? 0 : n] = 0;
				jopen('{');
				jkey("path");
				jstring(p);
				jkey("target");
				jstring(t);
				jkey("how");
				jstring("open-wronly");
				jclose('}');
				close(fd);
			}
			if (nheld < MAX_HELD) {
				int h = open(p, O_PATH | O_CLOEXEC);
				if (h >= 0)
					held[nheld++] = h;
			}
		}
		if (d)
			closedir(d);
		for (int i = 0; i < npaths; i++) {
			attempts++;
			int fd = open(paths[i], O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				jopen('{');
				jkey("path");
				jstring(paths[i]);
				jkey("how");
				jstring("open-wronly");
				jclose('}');
				close(fd);
			}
		}
		for (int i = 0; i < nheld; i++) {
			char p[64];
			snprintf(p, sizeof p, "/proc/self/fd/%d", held[i]);
			attempts++;
			int fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				char t[PATH_MAX];
				ssize_t n = readlink(p, t, sizeof t - 1);
				t[n < 0 ? 0 : n] = 0;
				jopen('{');
				jkey("path");
				jstring(p);
				jkey("target");
				jstring(t);
				jkey("how");
				jstring("reopen-o-path");
				jclose('}');
				close(fd);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
		if (el >= seconds)
			break;
		usleep(2000);
	}
	jclose(']');
	jkey("attempts");
	jint(attempts);
	jkey("scans");
	jint(scans);
	jkey("held");
	jint(nheld);
	jclose('}');
	return emit();
}

static int cmd_cat(void)
{
	char b[4096];
	for (;;) {
		ssize_t n = read(0, b, sizeof b);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? 1 : 0;
		if (write_all(1, b, (size_t)n) < 0)
			return 1;
	}
}

static void usage(void)
{
	fputs("usage: berth-probe report|sleep N|exit N|signals|fds|write-exe|cat [options]\n", stderr);
}

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	if (argc < 2) {
		usage();
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "sleep") && argc > 2) {
		double s = atof(argv[2]);
		struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return 0;
	}
	if (!strcmp(cmd, "exit") && argc > 2)
		return atoi(argv[2]);
	if (!strcmp(cmd, "signals"))
		return cmd_signals();
	if (!strcmp(cmd, "write-exe"))
		return cmd_write_exe(argc - 2, argv + 2);
	if (!strcmp(cmd, "cat"))
		return cmd_cat();
	if (!strcmp(cmd, "fds")) {
		if (argc > 3 && !strcmp(argv[2], "--out"))
			out_path = argv[3];
		jopen('{');
		report_fds();
		jclose('}');
		return emit();
	}
	if (strcmp(cmd, "report")) {
		usage();
		return 2;
	}
	double sleep_after = 0;
	int exit_code = 0;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "berth-probe: %s needs a value\n", o);
			return 2;
		}
		i++;
		if (!strcmp(o, "--out"))
			out_path = v;
		else if (!strcmp(o, "--sysctl") && nsysctl < MAXOPT)
			sysctls[nsysctl++] = v;
		else if (!strcmp(o, "--read") && nread < MAXOPT)
			reads[nread++] = v;
		else if (!strcmp(o, "--try-write") && nwrite < MAXOPT)
			writes[nwrite++] = v;
		else if (!strcmp(o, "--try-syscall") && nsyscall < MAXOPT)
			syscalls_[nsyscall++] = v;
		else if (!strcmp(o, "--sleep"))
			sleep_after = atof(v);
		else if (!strcmp(o, "--exit"))
			exit_code = atoi(v);
		else {
			fprintf(stderr, "berth-probe: unknown option %s\n", o);
			return 2;
		}
	}
	report();
	int rc = emit();
	if (rc)
		return rc;
	if (sleep_after > 0) {
		struct timespec ts = { (time_t)sleep_after, 0 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return exit_code;
}
