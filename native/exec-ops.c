/*
 * The ops of a launch plan (plan.h), run in order by exec.c. No policy here: every
 * decision was made by the TypeScript runtime. Each op returns 0 or -errno with a
 * short message in err that names the op's action and its argument.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "exec.h"

#define S(n) (op->args[(n)].s)
#define I(n) (op->args[(n)].i)

#define PROPAGATION_FLAGS (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ------------------------------------------------------------- paths in the root */

/* Opens path inside root: symlinks and ".." cannot leave it, no magic links. */
static int open_in_root_resolve(const char *root, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve };
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	long fd;
	int e;

	if (rfd < 0)
		return -errno;
	fd = syscall(SYS_openat2, rfd, *path ? path : "/", &how, sizeof how);
	e = errno;
	close(rfd);
	return fd < 0 ? -e : (int)fd;
}

static int open_in_root(const char *root, const char *path, int flags)
{
	return open_in_root_resolve(root, path, flags, 0);
}

static int is_root(const char *root)
{
	return root[0] == '/' && root[1] == 0;
}

/* The host-side name of path in root, for messages. */
static const char *shown(char *buf, size_t len, const char *root, const char *path)
{
	if (is_root(root))
		return path;
	snprintf(buf, len, "%s%s%s", root, path[0] == '/' ? "" : "/", path);
	return buf;
}

/*
 * The path to hand to mount(2) for a target resolved to fd. Once the root is "/"
 * (after pivot_root) plain paths cannot leave it, and the container may have no /proc.
 */
static const char *mount_path(char *buf, size_t len, const char *root, const char *path, int fd)
{
	if (is_root(root))
		return path;
	snprintf(buf, len, "/proc/self/fd/%d", fd);
	return buf;
}

/* mkdir -p of path inside root; with as_file the last component is an empty file. */
static int create_path(const char *root, const char *path, mode_t mode, int as_file)
{
	char buf[PATH_MAX];
	size_t i = 0;

	if (strlen(path) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (;;) {
		size_t start, end, j;
		char name[NAME_MAX + 1], saved, first;
		int fd, dfd, last;

		while (buf[i] == '/')
			i++;
		if (!buf[i])
			return 0;
		start = i;
		while (buf[i] && buf[i] != '/')
			i++;
		end = i;
		for (j = end; buf[j] == '/'; j++)
			;
		last = !buf[j];
		if (end - start > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, buf + start, end - start);
		name[end - start] = 0;

		saved = buf[end];
		buf[end] = 0;
		fd = open_in_root(root, buf, O_PATH);
		buf[end] = saved;
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (fd != -ENOENT)
			return fd;

		first = buf[start];
		buf[start] = 0;
		dfd = open_in_root(root, start ? buf : "/", O_PATH | O_DIRECTORY);
		buf[start] = first;
		if (dfd < 0)
			return dfd;
		if (last && as_file) {
			fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (fd < 0 && errno != EEXIST) {
				int e = errno;
				close(dfd);
				return -e;
			}
			if (fd >= 0)
				close(fd);
		} else if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST) {
			int e = errno;
			close(dfd);
			return -e;
		}
		close(dfd);
	}
}

/* Splits path into its parent (created in root) opened O_PATH, and its last name. */
static int open_parent(const char *root, const char *path, char *name, size_t namelen)
{
	char parent[PATH_MAX];
	size_t len = strlen(path);
	const char *slash;
	int r;

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof parent)
		return -ENAMETOOLONG;
	memcpy(parent, path, len);
	parent[len] = 0;
	slash = strrchr(parent, '/');
	if ((slash ? strlen(slash + 1) : len) >= namelen)
		return -ENAMETOOLONG;
	strcpy(name, slash ? slash + 1 : parent);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (slash)
		parent[slash - parent + (slash == parent)] = 0;
	else
		strcpy(parent, "/");
	r = create_path(root, parent, 0755, 0);
	if (r < 0)
		return r;
	return open_in_root(root, parent, O_PATH | O_DIRECTORY);
}

/* Flags a bind remount must keep because the kernel locks them on the source. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int bind_remount(const char *path, unsigned long flags)
{
	flags = (flags & ~(unsigned long)(MS_REC | PROPAGATION_FLAGS | MS_BIND)) | MS_REMOUNT | MS_BIND;
	if (mount(NULL, path, NULL, flags, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -errno;
	if (mount(NULL, path, NULL, flags | locked_flags(path), NULL) == 0)
		return 0;
	return -errno;
}

/* ------------------------------------------------------------- mounts */

static int op_mount(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	const char *src = S(0), *target = S(1), *fstype = S(2), *data = S(4);
	unsigned long flags = (unsigned long)I(3);
	int64_t mf = I(5);
	unsigned long prop = flags & PROPAGATION_FLAGS;
	const char *root = (mf & BERTH_MNT_IN_ROOT) ? c->rootfs : "/";
	const char *what = *src ? src : (*fstype ? fstype : "none");
	char show[2 * PATH_MAX], mp[64];
	const char *tpath;
	int fd, r = 0;

	/* procfs and sysfs go only on ordinary directories: an image must not redirect them
	 * through symlinks to where later writes (LSM labels, sysctls) would be faked. */
	int kernelfs = !strcmp(fstype, "proc") || !strcmp(fstype, "sysfs");

	shown(show, sizeof show, root, target);
	fd = open_in_root_resolve(root, target, O_PATH, kernelfs ? RESOLVE_NO_SYMLINKS : 0);
	if (fd == -ELOOP && kernelfs)
		return berth_errf(err, errlen, ELOOP, "mount %s on %s: a symlink is in the way; %s must be mounted on an ordinary directory",
				  fstype, show, fstype);
	if (fd == -ENOENT && (mf & BERTH_MNT_ENOENT_OK))
		return 0;
	if (fd == -ENOENT && (mf & BERTH_MNT_MKDIR)) {
		struct stat st;
		int as_file = (flags & MS_BIND) && stat(src, &st) == 0 && !S_ISDIR(st.st_mode);

		r = create_path(root, target, 0755, as_file);
		if (r < 0)
			return berth_errf(err, errlen, -r, "mount %s on %s: create the mount point", what, show);
		fd = open_in_root(root, target, O_PATH);
	}
	if (fd < 0)
		return berth_errf(err, errlen, -fd, "mount %s on %s", what, show);
	tpath = mount_path(mp, sizeof mp, root, target, fd);

	if (mf & BERTH_MNT_PROPAGATION) {
		if (mount(NULL, tpath, NULL, flags, NULL) < 0)
			r = berth_errf(err, errlen, errno, "set propagation 0x%lx of %s", flags, show);
		close(fd);
		return r;
	}

	if (flags & MS_BIND) {
		if (mount(src, tpath, NULL, MS_BIND | (flags & MS_REC), NULL) < 0) {
			r = berth_errf(err, errlen, errno, "bind mount %s on %s", src, show);
			close(fd);
			return r;
		}
	} else if (mount(*src ? src : NULL, tpath, *fstype ? fstype : NULL, flags & ~prop, *data ? data : NULL) < 0) {
		r = berth_errf(err, errlen, errno, "mount %s on %s", what, show);
		close(fd);
		return r;
	}
	close(fd);

	if (!(mf & BERTH_MNT_BIND_REMOUNT) && !prop)
		return 0;
	/* The fd names the covered directory: reopen to reach the new mount. */
	fd = open_in_root(root, target, O_PATH);
	if (fd < 0)
		return berth_errf(err, errlen, -fd, "reopen %s after mounting", show);
	tpath = mount_path(mp, sizeof mp, root, target, fd);
	if ((mf & BERTH_MNT_BIND_REMOUNT) && (r = bind_remount(tpath, flags)) < 0)
		r = berth_errf(err, errlen, -r, "remount %s with flags 0x%lx", show, flags);
	else if (prop && mount(NULL, tpath, NULL, prop | (flags & MS_REC), NULL) < 0)
		r = berth_errf(err, errlen, errno, "set propagation 0x%lx of %s", prop, show);
	close(fd);
	return r;
}

static int op_mknod(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	const char *path = S(0);
	mode_t mode = (mode_t)I(1);
	char name[NAME_MAX + 1], show[2 * PATH_MAX];
	struct stat st;
	int dfd, r = 0;

	shown(show, sizeof show, c->rootfs, path);
	dfd = open_parent(c->rootfs, path, name, sizeof name);
	if (dfd < 0)
		return berth_errf(err, errlen, -dfd, "mknod %s: open the parent directory", show);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			r = berth_errf(err, errlen, EEXIST, "mknod %s: a directory is in the way", show);
			goto out;
		}
		if (unlinkat(dfd, name, 0) < 0) {
			r = berth_errf(err, errlen, errno, "mknod %s: remove the existing file", show);
			goto out;
		}
	}
	if (mknodat(dfd, name, mode, makedev((unsigned)I(2), (unsigned)I(3))) < 0)
		r = berth_errf(err, errlen, errno, "mknod %s (%lld:%lld)", show, (long long)I(2), (long long)I(3));
	else if (fchownat(dfd, name, (uid_t)I(4), (gid_t)I(5), AT_SYMLINK_NOFOLLOW) < 0)
		r = berth_errf(err, errlen, errno, "chown %s to %lld:%lld", show, (long long)I(4), (long long)I(5));
	else if (fchmodat(dfd, name, mode & 07777, 0) < 0)
		r = berth_errf(err, errlen, errno, "chmod %s to %o", show, (unsigned)(mode & 07777));
out:
	close(dfd);
	return r;
}

static int op_bind_device(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	const char *host = S(0), *path = S(1);
	char show[2 * PATH_MAX], mp[64];
	int fd, r;

	shown(show, sizeof show, c->rootfs, path);
	r = create_path(c->rootfs, path, 0755, 1);
	if (r < 0)
		return berth_errf(err, errlen, -r, "bind device %s: create %s", host, show);
	fd = open_in_root(c->rootfs, path, O_PATH);
	if (fd < 0)
		return berth_errf(err, errlen, -fd, "bind device %s on %s", host, show);
	r = 0;
	if (mount(host, mount_path(mp, sizeof mp, c->rootfs, path, fd), NULL, MS_BIND, NULL) < 0)
		r = berth_errf(err, errlen, errno, "bind device %s on %s", host, show);
	close(fd);
	return r;
}

static int op_symlink(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	char name[NAME_MAX + 1], show[2 * PATH_MAX];
	int dfd, r = 0;

	shown(show, sizeof show, c->rootfs, S(1));
	dfd = open_parent(c->rootfs, S(1), name, sizeof name);
	if (dfd < 0)
		return berth_errf(err, errlen, -dfd, "symlink %s -> %s: open the parent directory", show, S(0));
	if (symlinkat(S(0), dfd, name) < 0 && errno != EEXIST)
		r = berth_errf(err, errlen, errno, "symlink %s -> %s", show, S(0));
	close(dfd);
	return r;
}

static int op_pivot_root(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	int oldroot, newroot, r = 0;

	oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (oldroot < 0)
		return berth_errf(err, errlen, errno, "pivot_root: open /");
	newroot = open(S(0), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (newroot < 0) {
		r = berth_errf(err, errlen, errno, "pivot_root: open %s", S(0));
		goto out;
	}
	/* pivot_root(".", ".") stacks the old root on the new one; detach it from there. */
	if (fchdir(newroot) < 0)
		r = berth_errf(err, errlen, errno, "pivot_root: chdir %s", S(0));
	else if (syscall(SYS_pivot_root, ".", ".") < 0)
		r = berth_errf(err, errlen, errno, "pivot_root %s", S(0));
	else if (fchdir(oldroot) < 0)
		r = berth_errf(err, errlen, errno, "pivot_root: chdir to the old root");
	else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		r = berth_errf(err, errlen, errno, "pivot_root: make the old root rslave");
	else if (umount2(".", MNT_DETACH) < 0)
		r = berth_errf(err, errlen, errno, "pivot_root: detach the old root");
	else if (chdir("/") < 0)
		r = berth_errf(err, errlen, errno, "pivot_root: chdir /");
	else
		c->rootfs = "/";
	close(newroot);
out:
	close(oldroot);
	return r;
}

static int op_move_root(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	if (chdir(S(0)) < 0)
		return berth_errf(err, errlen, errno, "move root: chdir %s", S(0));
	if (mount(S(0), "/", NULL, MS_MOVE, NULL) < 0)
		return berth_errf(err, errlen, errno, "move root: mount --move %s /", S(0));
	if (chroot(".") < 0)
		return berth_errf(err, errlen, errno, "move root: chroot %s", S(0));
	if (chdir("/") < 0)
		return berth_errf(err, errlen, errno, "move root: chdir /");
	c->rootfs = "/";
	return 0;
}

static int op_mask_path(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	char show[2 * PATH_MAX], mp[64];
	const char *tpath;
	struct stat st;
	int fd, r = 0;

	shown(show, sizeof show, c->rootfs, S(0));
	fd = open_in_root(c->rootfs, S(0), O_PATH);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return berth_errf(err, errlen, -fd, "mask %s", show);
	tpath = mount_path(mp, sizeof mp, c->rootfs, S(0), fd);
	if (fstat(fd, &st) < 0)
		r = berth_errf(err, errlen, errno, "mask %s: stat", show);
	else if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", tpath, "tmpfs", MS_RDONLY, NULL) < 0)
			r = berth_errf(err, errlen, errno, "mask %s: mount a read-only tmpfs", show);
	} else if (mount("/dev/null", tpath, NULL, MS_BIND, NULL) < 0) {
		r = berth_errf(err, errlen, errno, "mask %s: bind /dev/null", show);
	}
	close(fd);
	return r;
}

static int remount_ro(struct exec_ctx *c, const char *path, int bind_first, char *err, size_t errlen)
{
	char show[2 * PATH_MAX], mp[64];
	const char *tpath;
	int fd, r;

	shown(show, sizeof show, c->rootfs, path);
	fd = open_in_root(c->rootfs, path, O_PATH);
	if (fd == -ENOENT && bind_first)
		return 0;
	if (fd < 0)
		return berth_errf(err, errlen, -fd, "make %s read-only", show);
	if (bind_first) {
		tpath = mount_path(mp, sizeof mp, c->rootfs, path, fd);
		if (mount(tpath, tpath, NULL, MS_BIND | MS_REC, NULL) < 0) {
			r = berth_errf(err, errlen, errno, "make %s read-only: bind it onto itself", show);
			close(fd);
			return r;
		}
		close(fd);
		fd = open_in_root(c->rootfs, path, O_PATH);
		if (fd < 0)
			return berth_errf(err, errlen, -fd, "make %s read-only: reopen", show);
	}
	tpath = mount_path(mp, sizeof mp, c->rootfs, path, fd);
	r = 0;
	if (mount(NULL, tpath, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(tpath), NULL) < 0)
		r = berth_errf(err, errlen, errno, "remount %s read-only", show);
	close(fd);
	return r;
}

/* ------------------------------------------------------------- process attributes */

/* Writes a /proc/self file; in a user namespace a non-dumpable process may need to be
 * dumpable for a moment (its /proc files then belong to root of the namespace). */
static int write_self(const char *path, const char *data, size_t len)
{
	int tries, e = 0;

	for (tries = 0; tries < 2; tries++) {
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		ssize_t n;

		if (tries)
			prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		struct statfs sf;

		if (fd < 0) {
			e = errno;
		} else if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
			/* only ever write through a real procfs: an image could put a fake one there */
			e = EXDEV;
			close(fd);
		} else {
			n = write(fd, data, len);
			e = n == (ssize_t)len ? 0 : (n < 0 ? errno : EIO);
			close(fd);
		}
		if (e != EACCES || tries)
			break;
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	return -e;
}

static int op_sysctl(const struct plan_op *op, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "/proc/sys/%s", S(0)), r;

	if (n < 0 || (size_t)n >= sizeof path)
		return berth_errf(err, errlen, ENAMETOOLONG, "sysctl %s", S(0));
	for (char *p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	r = write_self(path, S(1), op->args[1].len);
	if (r < 0)
		return berth_errf(err, errlen, -r, "sysctl %s=%s (write %s)", S(0), S(1), path);
	return 0;
}

static const char *const rlimit_names[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static void fmt_rlim(char *buf, size_t len, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int op_rlimit(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	int res = (int)I(0);
	struct rlimit want = {
		.rlim_cur = I(1) < 0 ? RLIM_INFINITY : (rlim_t)I(1),
		.rlim_max = I(2) < 0 ? RLIM_INFINITY : (rlim_t)I(2),
	};
	struct rlimit cur;
	char name[32], a[32], b[32];

	if (res >= 0 && (size_t)res < sizeof rlimit_names / sizeof rlimit_names[0])
		snprintf(name, sizeof name, "%s", rlimit_names[res]);
	else
		snprintf(name, sizeof name, "rlimit %d", res);
	if (setrlimit((__rlimit_resource_t)res, &want) == 0)
		return 0;
	if (errno != EPERM || getrlimit((__rlimit_resource_t)res, &cur) < 0 || want.rlim_max <= cur.rlim_max)
		return berth_errf(err, errlen, errno, "rlimit %s", name);
	fmt_rlim(a, sizeof a, want.rlim_max);
	fmt_rlim(b, sizeof b, cur.rlim_max);
	want.rlim_max = cur.rlim_max;
	if (want.rlim_cur > cur.rlim_max)
		want.rlim_cur = cur.rlim_max;
	if (setrlimit((__rlimit_resource_t)res, &want) < 0)
		return berth_errf(err, errlen, errno, "rlimit %s (clamped to %s)", name, b);
	berth_warn(c, "rlimit %s: hard limit %s exceeds the host's %s, clamped", name, a, b);
	return 0;
}

static int op_oom_score_adj(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	char val[32];
	int r;

	snprintf(val, sizeof val, "%lld", (long long)I(0));
	r = write_self("/proc/self/oom_score_adj", val, strlen(val));
	if (r == 0)
		return 0;
	if (I(0) < 0 && (r == -EACCES || r == -EPERM)) {
		char cur[32] = "";
		int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ssize_t n = read(fd, cur, sizeof cur - 1);
			cur[n > 0 ? n : 0] = 0;
			cur[strcspn(cur, "\n")] = 0;
			close(fd);
		}
		berth_warn(c, "oom_score_adj %s: %s (no CAP_SYS_RESOURCE?); keeping %s", val, strerror(-r),
			   *cur ? cur : "the current value");
		return 0;
	}
	return berth_errf(err, errlen, -r, "set oom_score_adj to %s", val);
}

static int op_user(const struct plan_op *op, char *err, size_t errlen)
{
	uid_t uid = (uid_t)I(0);
	gid_t gid = (gid_t)I(1);
	int64_t n = I(2);

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return berth_errf(err, errlen, errno, "user: prctl(PR_SET_KEEPCAPS)");
	if (n >= 0) {
		gid_t *groups = calloc((size_t)(n ? n : 1), sizeof *groups);

		if (!groups)
			return berth_errf(err, errlen, ENOMEM, "user: setgroups");
		for (int64_t k = 0; k < n; k++)
			groups[k] = (gid_t)I(3 + k);
		if (setgroups((size_t)n, groups) < 0) {
			int e = errno;
			free(groups);
			return berth_errf(err, errlen, e, "user: setgroups (%lld groups)", (long long)n);
		}
		free(groups);
	}
	if (setresgid(gid, gid, gid) < 0)
		return berth_errf(err, errlen, errno, "user: setresgid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		return berth_errf(err, errlen, errno, "user: setresuid %u", uid);
	return 0;
}

static int capset3(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
	};

	return (int)syscall(SYS_capset, &h, d);
}

static int op_caps(const struct plan_op *op, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	uint64_t bounding = (uint64_t)I(0), valid = 0, perm;
	int last = -1;

	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		last = cap;
	valid = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;

	/* OP_USER may have cleared the effective set: dropping bounding caps needs CAP_SETPCAP. */
	if (syscall(SYS_capget, &h, d) < 0)
		return berth_errf(err, errlen, errno, "caps: capget");
	perm = d[0].permitted | ((uint64_t)d[1].permitted << 32);
	if (capset3(perm, perm, d[0].inheritable | ((uint64_t)d[1].inheritable << 32)) < 0)
		return berth_errf(err, errlen, errno, "caps: raise the effective set");
	for (int cap = 0; cap <= last; cap++) {
		if (bounding & (1ULL << cap) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return berth_errf(err, errlen, errno, "caps: drop capability %d from the bounding set", cap);
	}
	if (capset3((uint64_t)I(1) & valid, (uint64_t)I(2) & valid, (uint64_t)I(3) & valid) < 0)
		return berth_errf(err, errlen, errno, "caps: capset effective 0x%llx permitted 0x%llx inheritable 0x%llx",
				  (unsigned long long)I(1), (unsigned long long)I(2), (unsigned long long)I(3));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return berth_errf(err, errlen, errno, "caps: clear the ambient set");
	for (int cap = 0; cap <= last; cap++)
		if (((uint64_t)I(4) & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return berth_errf(err, errlen, errno, "caps: raise ambient capability %d", cap);
	return 0;
}

/* ------------------------------------------------------------- console */

static int send_fd(int sock, int fd, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int op_console(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	char name[64];
	unsigned int ptn;
	int unlock = 0, master, slave, r;

	if (c->console_sock < 0)
		return berth_errf(err, errlen, EBADF, "console: no console socket to send the pty to");
	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return berth_errf(err, errlen, errno, "console: open /dev/ptmx");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0) {
		r = berth_errf(err, errlen, errno, "console: unlock the pty");
		close(master);
		return r;
	}
	snprintf(name, sizeof name, "/dev/pts/%u", ptn);
	if (I(0) > 0 && I(1) > 0) {
		struct winsize ws = { .ws_row = (unsigned short)I(0), .ws_col = (unsigned short)I(1) };
		if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
			r = berth_errf(err, errlen, errno, "console: set the size of %s", name);
			close(master);
			return r;
		}
	}
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		r = berth_errf(err, errlen, errno, "console: open %s", name);
		close(master);
		return r;
	}
	r = send_fd(c->console_sock, master, name);
	close(master);
	close(c->console_sock);
	c->console_sock = -1;
	if (r < 0) {
		close(slave);
		return berth_errf(err, errlen, -r, "console: send the pty master over the console socket");
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0) {
			r = berth_errf(err, errlen, errno, "console: dup %s to fd %d", name, fd);
			close(slave);
			return r;
		}
	if (slave > 2)
		close(slave);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		return berth_errf(err, errlen, errno, "console: make %s the controlling terminal", name);
	return 0;
}

static int op_console_socket(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (op->args[0].len >= sizeof addr.sun_path)
		return berth_errf(err, errlen, ENAMETOOLONG, "console socket %s", S(0));
	memcpy(addr.sun_path, S(0), op->args[0].len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_errf(err, errlen, errno, "console socket %s: socket", S(0));
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int r = berth_errf(err, errlen, errno, "connect to the console socket %s", S(0));
		close(fd);
		return r;
	}
	if (c->console_sock >= 0)
		close(c->console_sock);
	c->console_sock = fd;
	return 0;
}

/* ------------------------------------------------------------- hooks */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds argv (from a count) and envp (the rest) from op arguments starting at first. */
static int build_vectors(const struct plan_op *op, int first, int64_t n, const char *argv0,
			 char ***argv, char ***envp)
{
	int nenv = op->nargs - first - (int)n;
	char **a = calloc((size_t)n + 2, sizeof *a), **e = calloc((size_t)nenv + 1, sizeof *e);

	if (!a || !e) {
		free(a);
		free(e);
		return -ENOMEM;
	}
	for (int64_t k = 0; k < n; k++)
		a[k] = (char *)S(first + k);
	if (n == 0 && argv0)
		a[0] = (char *)argv0;
	for (int k = 0; k < nenv; k++)
		e[k] = (char *)S(first + (int)n + k);
	*argv = a;
	*envp = e;
	return 0;
}

static int op_hook(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	const char *path = S(0);
	int64_t timeout = I(1);
	char **argv = NULL, **envp = NULL;
	int sp[2], ep[2], pidfd, status = 0, r, exec_errno = 0;
	size_t off = 0;
	long long deadline = now_ms() + timeout * 1000;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return berth_errf(err, errlen, errno, "hook %s: socketpair", path);
	if (pipe2(ep, O_CLOEXEC) < 0) {
		r = berth_errf(err, errlen, errno, "hook %s: pipe", path);
		close(sp[0]);
		close(sp[1]);
		return r;
	}
	r = build_vectors(op, 3, I(2), path, &argv, &envp);
	pid = r < 0 ? -1 : fork();
	if (pid < 0) {
		r = berth_errf(err, errlen, r < 0 ? -r : errno, "hook %s: fork", path);
		free(argv);
		free(envp);
		close(sp[0]);
		close(sp[1]);
		close(ep[0]);
		close(ep[1]);
		return r;
	}
	if (pid == 0) {
		int e;

		if (dup2(sp[1], 0) >= 0)
			execve(path, argv, envp);
		e = errno;
		if (write(ep[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	free(argv);
	free(envp);
	close(sp[1]);
	close(ep[1]);
	if (read(ep[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno)
		exec_errno = 0;
	close(ep[0]);

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = berth_errf(err, errlen, errno, "hook %s: pidfd_open", path);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sp[0]);
		return r;
	}
	if (!c->state || !c->state_len) {
		close(sp[0]);
		sp[0] = -1;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = sp[0], .events = POLLOUT } };
		int ms = -1, n;

		if (timeout > 0) {
			long long left = deadline - now_ms();
			ms = left > 0 ? (int)left : 0;
		}
		n = poll(p, 2, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			berth_errf(err, errlen, 0, "hook %s timed out after %llds", path, (long long)timeout);
			r = -ETIMEDOUT;
			goto out;
		}
		if (p[1].revents) {
			ssize_t w = send(sp[0], c->state + off, c->state_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == c->state_len) {
				close(sp[0]);
				sp[0] = -1;
			}
		}
		if (p[0].revents & POLLIN) {
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
	}
	r = 0;
	if (exec_errno)
		r = berth_errf(err, errlen, exec_errno, "hook %s: exec", path);
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		berth_errf(err, errlen, 0, "hook %s exited with status %d", path, WEXITSTATUS(status));
		r = -ECANCELED;
	} else if (WIFSIGNALED(status)) {
		berth_errf(err, errlen, 0, "hook %s was killed by signal %d", path, WTERMSIG(status));
		r = -ECANCELED;
	}
out:
	close(pidfd);
	if (sp[0] >= 0)
		close(sp[0]);
	return r;
}

static int op_sync(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	uint32_t hdr[2];
	char *payload;
	size_t off = 0;
	int r;

	r = berth_send_msg(c->chan, MSG_SYNC, S(0), op->args[0].len);
	if (r < 0)
		return berth_errf(err, errlen, -r, "sync %s: send", S(0));
	while (off < sizeof hdr) {
		ssize_t n = read(c->chan, (char *)hdr + off, sizeof hdr - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return berth_errf(err, errlen, n < 0 ? errno : EPIPE, "sync %s: wait for MSG_CONTINUE", S(0));
		off += (size_t)n;
	}
	if (hdr[0] != MSG_CONTINUE)
		return berth_errf(err, errlen, EPROTO, "sync %s: expected MSG_CONTINUE, got message type %u", S(0),
				  hdr[0]);
	if (hdr[1] > (64u << 20))
		return berth_errf(err, errlen, EMSGSIZE, "sync %s: state of %u bytes", S(0), hdr[1]);
	payload = malloc((size_t)hdr[1] + 1);
	if (!payload)
		return berth_errf(err, errlen, ENOMEM, "sync %s", S(0));
	for (off = 0; off < hdr[1];) {
		ssize_t n = read(c->chan, payload + off, hdr[1] - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(payload);
			return berth_errf(err, errlen, n < 0 ? errno : EPIPE, "sync %s: read the state", S(0));
		}
		off += (size_t)n;
	}
	payload[hdr[1]] = 0;
	free(c->state);
	c->state = payload;
	c->state_len = hdr[1];
	return 0;
}

/* ------------------------------------------------------------- exec */

static int executable(const char *path, int *err_out)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*err_out = errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		*err_out = EACCES;
		return 0;
	}
	return 1;
}

/* Resolves OP_EXEC's argv[0] like Go's exec.LookPath (runc's messages). */
static int resolve_exec(struct exec_ctx *c, int check_cwd, char *out, size_t outlen, char *err, size_t errlen)
{
	const struct plan_op *op;
	const char *cwd, *prog, *path = DEFAULT_PATH;
	int e = 0;

	if (c->exec_index < 0)
		return 0;
	op = &c->ops[c->exec_index];
	cwd = S(0);
	if (I(1) < 1)
		return berth_errf(err, errlen, EINVAL, "exec: no program given");
	prog = S(2);
	if (strchr(prog, '/')) {
		if (check_cwd && prog[0] != '/' && *cwd)
			snprintf(out, outlen, "%s/%s", cwd, prog);
		else
			snprintf(out, outlen, "%s", prog);
		if (!executable(out, &e)) {
			if (e == EACCES)
				return berth_errf(err, errlen, 0, "exec: \"%s\": permission denied", prog), -EACCES;
			return berth_errf(err, errlen, 0, "exec: \"%s\": stat %s: %s", prog, prog, strerror(e)), -e;
		}
		snprintf(out, outlen, "%s", prog);
		return 0;
	}
	for (int k = 2 + (int)I(1); k < op->nargs; k++)
		if (strncmp(S(k), "PATH=", 5) == 0)
			path = S(k) + 5;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int dlen = (int)(end - p);

		if (dlen == 0)
			snprintf(out, outlen, "%s", prog);
		else
			snprintf(out, outlen, "%.*s/%s", dlen, p, prog);
		if (executable(out, &e))
			return 0;
		p = end;
		if (!*p)
			break;
	}
	return berth_errf(err, errlen, 0, "exec: \"%s\": executable file not found in $PATH", prog), -ENOENT;
}

static int op_wait_start(struct exec_ctx *c, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r, fd;

	r = resolve_exec(c, 1, path, sizeof path, err, errlen);
	if (r < 0)
		return r;
	r = berth_child_done(c, err, errlen);
	if (r < 0 || c->fifo < 0)
		return r;
	snprintf(path, sizeof path, "/proc/self/fd/%d", c->fifo);
	do
		fd = open(path, O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return berth_errf(err, errlen, errno, "wait for start: open the exec fifo");
	if (write(fd, "0", 1) != 1) {
		r = berth_errf(err, errlen, errno, "wait for start: write the exec fifo");
		close(fd);
		return r;
	}
	close(fd);
	close(c->fifo);
	c->fifo = -1;
	return 0;
}

static int op_exec(struct exec_ctx *c, const struct plan_op *op, char *err, size_t errlen)
{
	char path[PATH_MAX];
	char **argv, **envp;
	int r;

	if (*S(0) && chdir(S(0)) < 0)
		return berth_errf(err, errlen, errno, "exec: chdir to the working directory %s", S(0));
	r = resolve_exec(c, 0, path, sizeof path, err, errlen);
	if (r < 0)
		return r;
	r = build_vectors(op, 2, I(1), NULL, &argv, &envp);
	if (r < 0)
		return berth_errf(err, errlen, -r, "exec %s", path);
	r = berth_child_done(c, err, errlen);
	if (r == 0) {
		execve(path, argv, envp);
		r = berth_errf(err, errlen, errno, "exec %s", path);
	}
	free(argv);
	free(envp);
	return r;
}

/* The kernel's struct sched_attr (glibc 2.36 has no wrapper). */
struct berth_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static int op_scheduler(const struct plan_op *op, char *err, size_t errlen)
{
	struct berth_sched_attr a = {
		.size = sizeof a,
		.sched_policy = (uint32_t)I(0),
		.sched_nice = (int32_t)I(1),
		.sched_priority = (uint32_t)I(2),
		.sched_flags = (uint64_t)I(3),
		.sched_runtime = (uint64_t)I(4),
		.sched_deadline = (uint64_t)I(5),
		.sched_period = (uint64_t)I(6),
	};

	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return berth_errf(err, errlen, errno, "sched_setattr policy %u priority %u nice %d", a.sched_policy,
				  a.sched_priority, a.sched_nice);
	return 0;
}

static int op_cpu_affinity(const struct plan_op *op, char *err, size_t errlen)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int64_t i = 0; i < I(0); i++) {
		int64_t cpu = op->args[1 + i].i;

		if (cpu < 0 || cpu >= CPU_SETSIZE)
			return berth_errf(err, errlen, EINVAL, "cpu affinity: cpu %lld out of range", (long long)cpu);
		CPU_SET((int)cpu, &set);
	}
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		return berth_errf(err, errlen, errno, "sched_setaffinity");
	return 0;
}

static int op_close_fds(const struct plan_op *op, char *err, size_t errlen)
{
	unsigned int first = (unsigned int)I(0);
	DIR *d;
	struct dirent *de;

	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	d = opendir("/proc/self/fd");
	if (!d)
		return berth_errf(err, errlen, errno, "close fds: open /proc/self/fd");
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || fd < (long)first || fd == dirfd(d))
			continue;
		if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF) {
			int r = berth_errf(err, errlen, errno, "close fds: mark fd %ld close-on-exec", fd);
			closedir(d);
			return r;
		}
	}
	closedir(d);
	return 0;
}

/* ------------------------------------------------------------- dispatch */

static int write_attr(const char *what, const char *data, char *err, size_t errlen)
{
	int r = write_self("/proc/self/attr/exec", data, strlen(data));

	if (r < 0)
		return berth_errf(err, errlen, -r, "%s: write /proc/self/attr/exec", what);
	return 0;
}

/* ------------------------------------------------------------- cgroups */

int berth_join_cgroup_procs(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[16];
	int fd, r;

	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_errf(err, errlen, errno, "join cgroup %s", dir);
	r = write(fd, pid, strlen(pid)) < 0 ? -errno : 0;
	close(fd);
	return r < 0 ? berth_errf(err, errlen, -r, "join cgroup %s", dir) : 0;
}

/*
 * A write to cgroup.procs takes the kernel's global threadgroup lock for writing, and the
 * first writer after a quiet spell waits for an RCU grace period (5-25 ms here) to get it.
 * Two ways around it, same result:
 *  - cgroup v1: "0" written to <dir>/tasks moves the calling thread alone, which needs no
 *    threadgroup lock; berth-exec has a single thread, so the thread is the process.
 *  - cgroup v2 (no tasks file): when a clone follows, keep the directory and let clone3
 *    place the child in it (CLONE_INTO_CGROUP, exec.c); berth-exec itself stays out. Where
 *    that cannot be done, exec.c falls back to cgroup.procs before a plain clone.
 */
static int join_cgroup(struct exec_ctx *c, size_t index, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd, r;

	snprintf(path, sizeof path, "%s/tasks", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = write(fd, "0", 1) < 0 ? -errno : 0;
		close(fd);
		return r < 0 ? berth_errf(err, errlen, -r, "join cgroup %s", dir) : 0;
	}
	if (errno != ENOENT)
		return berth_errf(err, errlen, errno, "join cgroup %s", dir);
	if (c->will_clone && c->clone_cgroup < 0) {
		fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return berth_errf(err, errlen, errno, "join cgroup %s", dir);
		c->clone_cgroup = fd;
		c->clone_cgroup_index = (long)index;
		return 0;
	}
	return berth_join_cgroup_procs(dir, err, errlen);
}

int berth_run_op(struct exec_ctx *c, size_t index, char *err, size_t errlen)
{
	const struct plan_op *op = &c->ops[index];
	int r, fd;

	switch (op->code) {
	case OP_CGROUP_JOIN:
		return join_cgroup(c, index, S(0), err, errlen);
	case OP_SETNS:
		fd = open(S(0), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return berth_errf(err, errlen, errno, "setns: open %s", S(0));
		r = setns(fd, (int)I(1)) < 0 ? berth_errf(err, errlen, errno, "setns %s", S(0)) : 0;
		close(fd);
		return r;
	case OP_CONSOLE_SOCKET:
		return op_console_socket(c, op, err, errlen);
	case OP_DEVICE_BPF:
		return berth_device_bpf(S(0), S(1), op->args[1].len, S(2), err, errlen);
	case OP_MKFIFO:
		if (mkfifo(S(0), (mode_t)I(1)) < 0)
			return berth_errf(err, errlen, errno, "mkfifo %s", S(0));
		/* mkfifo applies the umask; the mode must be exact. */
		return chmod(S(0), (mode_t)I(1)) < 0 ? berth_errf(err, errlen, errno, "chmod %s", S(0)) : 0;
	case OP_NEW_KEYRING:
		/* KEYCTL_JOIN_SESSION_KEYRING: a private session keyring, so containers do not
		 * share the caller's keys. Kernels without keys (ENOSYS) or that refuse it (EPERM,
		 * EACCES, EDQUOT) go on without, as runc does. */
		if (syscall(SYS_keyctl, 1, S(0)) < 0 && errno != ENOSYS && errno != EPERM && errno != EACCES &&
		    errno != EDQUOT)
			return berth_errf(err, errlen, errno, "join a new session keyring %s", S(0));
		return 0;
	case OP_SETSID:
		return setsid() < 0 ? berth_errf(err, errlen, errno, "setsid") : 0;
	case OP_MOUNT:
		return op_mount(c, op, err, errlen);
	case OP_ROOTFS:
		c->rootfs = S(0);
		return 0;
	case OP_MKDIR:
		r = create_path(c->rootfs, S(0), (mode_t)I(1), 0);
		return r < 0 ? berth_errf(err, errlen, -r, "mkdir %s", S(0)) : 0;
	case OP_MKNOD:
		return op_mknod(c, op, err, errlen);
	case OP_BIND_DEVICE:
		return op_bind_device(c, op, err, errlen);
	case OP_SYMLINK:
		return op_symlink(c, op, err, errlen);
	case OP_SYNC:
		return op_sync(c, op, err, errlen);
	case OP_HOOK:
		return op_hook(c, op, err, errlen);
	case OP_PIVOT_ROOT:
		return op_pivot_root(c, op, err, errlen);
	case OP_MOVE_ROOT:
		return op_move_root(c, op, err, errlen);
	case OP_MASK_PATH:
		return op_mask_path(c, op, err, errlen);
	case OP_READONLY_PATH:
		return remount_ro(c, S(0), 1, err, errlen);
	case OP_REMOUNT_RO:
		return remount_ro(c, S(0), 0, err, errlen);
	case OP_SYSCTL:
		return op_sysctl(op, err, errlen);
	case OP_HOSTNAME:
		return sethostname(S(0), op->args[0].len) < 0 ? berth_errf(err, errlen, errno, "sethostname %s", S(0)) : 0;
	case OP_DOMAINNAME:
		return setdomainname(S(0), op->args[0].len) < 0 ? berth_errf(err, errlen, errno, "setdomainname %s", S(0))
								    : 0;
	case OP_RLIMIT:
		return op_rlimit(c, op, err, errlen);
	case OP_OOM_SCORE_ADJ:
		return op_oom_score_adj(c, op, err, errlen);
	case OP_CONSOLE:
		return op_console(c, op, err, errlen);
	case OP_FIFO_OPEN:
		fd = open(S(0), O_PATH | O_CLOEXEC);
		if (fd < 0)
			return berth_errf(err, errlen, errno, "open the exec fifo %s", S(0));
		if (c->fifo >= 0)
			close(c->fifo);
		c->fifo = fd;
		return 0;
	case OP_WAIT_START:
		return op_wait_start(c, err, errlen);
	case OP_APPARMOR: {
		char buf[4096];

		snprintf(buf, sizeof buf, "exec %s", S(0));
		r = write_self("/proc/self/attr/apparmor/exec", buf, strlen(buf));
		if (r == -ENOENT)
			return write_attr("apparmor profile", buf, err, errlen);
		return r < 0 ? berth_errf(err, errlen, -r, "apparmor profile %s", S(0)) : 0;
	}
	case OP_SELINUX:
		return write_attr("selinux label", S(0), err, errlen);
	case OP_NO_NEW_PRIVS:
		return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? berth_errf(err, errlen, errno, "no_new_privs") : 0;
	case OP_UMASK:
		umask((mode_t)I(0));
		return 0;
	case OP_CHDIR:
		return chdir(S(0)) < 0 ? berth_errf(err, errlen, errno, "chdir %s", S(0)) : 0;
	case OP_USER:
		return op_user(op, err, errlen);
	case OP_CAPS:
		return op_caps(op, err, errlen);
	case OP_SECCOMP_INIT:
	case OP_SECCOMP_ARCH:
	case OP_SECCOMP_RULE:
	case OP_SECCOMP_LOAD:
		return berth_seccomp_op(op, err, errlen);
	case OP_PERSONALITY:
		return personality((unsigned long)I(0)) < 0 ? berth_errf(err, errlen, errno, "personality 0x%llx", (unsigned long long)I(0)) : 0;
	case OP_IOPRIO:
		/* ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | level) */
		if (syscall(SYS_ioprio_set, 1, 0, (int)((I(0) << 13) | I(1))) < 0)
			return berth_errf(err, errlen, errno, "ioprio_set class %lld level %lld", (long long)I(0), (long long)I(1));
		return 0;
	case OP_SCHEDULER:
		return op_scheduler(op, err, errlen);
	case OP_CPU_AFFINITY:
		return op_cpu_affinity(op, err, errlen);
	case OP_CLOSE_FDS:
		return op_close_fds(op, err, errlen);
	case OP_EXEC:
		return op_exec(c, op, err, errlen);
	default:
		return berth_errf(err, errlen, 0, "op %u cannot run here", op->code), -EINVAL;
	}
}
