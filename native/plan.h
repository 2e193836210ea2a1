/*
 * The launch plan: the contract between the TypeScript runtime (which decides
 * everything) and berth-exec (which executes, in order, without policy).
 *
 * src/runtime/plan.ts mirrors every number here; a unit test parses this file
 * and fails when the two drift apart.
 *
 * Wire format (little endian), sent by Node over the channel fd as the first
 * message (see MSG_PLAN below):
 *   plan   := "BRTP" u32 version  op*
 *   op     := u16 code  u16 nargs  arg*
 *   arg    := u8 kind  (kind 0: i64 value | kind 1: u32 len, len bytes, one NUL byte)
 * Strings carry a NUL so the executor can use them in place. Argument order is
 * positional and listed with each op as (i:int, s:string).
 *
 * Sections. The executor walks the ops from the start:
 *   1. "parent" ops run in berth-exec itself, until OP_CLONE.
 *   2. OP_CLONE forks the container's first process with the given namespace
 *      flags (0 = plain fork, as for exec). If the plan has no OP_CLONE, every
 *      op runs in berth-exec and it exits 0 after the last (used by e.g.
 *      `update` to attach a device program).
 *   3. After OP_CLONE, the parent runs the ops up to OP_CHILD (uid/gid maps),
 *      then releases the child, reports MSG_PID and waits for MSG_CHILD_DONE
 *      or an error from the child (see protocol below).
 *   4. The child waits for the parent to finish step 3, then runs every op
 *      after OP_CHILD. The last is OP_EXEC.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#define BERTH_PLAN_MAGIC "BRTP"
#define BERTH_PLAN_VERSION 1

enum berth_op {
	/* ---- parent section ---- */
	OP_CGROUP_JOIN = 1,     /* (s:dir) join dir: v1 "0" > tasks; v2 the next clone lands there (CLONE_INTO_CGROUP) */
	OP_SETNS = 2,           /* (s:path, i:nstype CLONE_NEW*) join an existing namespace */
	OP_CONSOLE_SOCKET = 3,  /* (s:path) connect AF_UNIX stream; the child sends the pty master there */
	OP_DEVICE_BPF = 4,      /* (s:cgroup dir, s:insns as raw struct bpf_insn bytes, s:license)
	                           load BPF_PROG_TYPE_CGROUP_DEVICE, attach with BPF_F_ALLOW_MULTI,
	                           detach every program that was attached to dir before */
	OP_MKFIFO = 5,          /* (s:path, i:mode) mkfifo (Node has no mkfifo): the exec fifo of create/start */
	OP_CLONE = 10,          /* (i:clone flags) */
	/* ---- parent, after clone ---- */
	OP_UIDMAP = 11,         /* (s:map text "inside outside count\n"...) write /proc/child/uid_map */
	OP_GIDMAP = 12,         /* (s:map text) write /proc/child/gid_map */
	OP_SETGROUPS_DENY = 13, /* () write "deny" to /proc/child/setgroups (before OP_GIDMAP) */
	OP_FOREGROUND = 14,     /* () stay parent of the child: forward SIGINT/TERM/HUP/QUIT/USR1/USR2/WINCH,
	                           send MSG_EXIT with the wait status when it ends. If the plan has
	                           OP_CONSOLE but no OP_CONSOLE_SOCKET, the parent makes a socketpair
	                           before the clone, receives the master and proxies it to its own
	                           stdio (stdin in raw mode when it is a tty, window size kept in sync) */
	OP_CHILD = 19,          /* () start of the child section */

	/* ---- child section ---- */
	OP_SETSID = 20,         /* () */
	OP_MOUNT = 21,          /* (s:source, s:target, s:fstype, i:flags MS_*, s:data, i:mflags BERTH_MNT_*)
	                           target is absolute (host view, already inside the rootfs path
	                           given by the last OP_ROOTFS) unless BERTH_MNT_IN_ROOT is set */
	OP_ROOTFS = 22,         /* (s:absolute rootfs path) remembered for BERTH_MNT_IN_ROOT resolution */
	OP_MKDIR = 23,          /* (s:path in root, i:mode) mkdir -p inside the rootfs */
	OP_MKNOD = 24,          /* (s:path in root, i:mode incl S_IF*, i:major, i:minor, i:uid, i:gid)
	                           replaces a regular file or missing node */
	OP_BIND_DEVICE = 25,    /* (s:host path, s:path in root) bind a host device node (user namespaces) */
	OP_SYMLINK = 26,        /* (s:target, s:link path in root) EEXIST is fine */
	OP_SYNC = 27,           /* (s:tag) send MSG_SYNC(tag), block for MSG_CONTINUE; its payload
	                           becomes the "current state" handed to hooks on stdin */
	OP_HOOK = 28,           /* (s:path, i:timeout seconds (0 none), i:nargs, s:args..., s:env...)
	                           fork, exec path with argv/env, current state on stdin, wait;
	                           failure is fatal */
	OP_PIVOT_ROOT = 29,     /* (s:rootfs) pivot_root(rootfs, rootfs) trick, detach old root, chdir / */
	OP_MOVE_ROOT = 30,      /* (s:rootfs) --no-pivot: mount --move rootfs /, chroot ., chdir / */
	OP_MASK_PATH = 31,      /* (s:path) dir: mount ro tmpfs; else bind /dev/null; ENOENT ignored */
	OP_READONLY_PATH = 32,  /* (s:path) bind onto itself and remount ro (keeping locked flags); ENOENT ignored */
	OP_SYSCTL = 33,         /* (s:key a.b.c, s:value) write /proc/sys/a/b/c */
	OP_HOSTNAME = 34,       /* (s:name) */
	OP_DOMAINNAME = 35,     /* (s:name) */
	OP_RLIMIT = 36,         /* (i:resource RLIMIT_*, i:soft, i:hard) -1 = RLIM_INFINITY */
	OP_OOM_SCORE_ADJ = 37,  /* (i:value) */
	OP_REMOUNT_RO = 38,     /* (s:path) remount an existing mount read-only (e.g. "/") */
	OP_CONSOLE = 39,        /* (i:rows, i:cols) open /dev/ptmx (inside the container), set size,
	                           send master over the console socket, make the slave fds 0,1,2 and ctty */
	OP_FIFO_OPEN = 40,      /* (s:path) open the exec fifo O_PATH now; in the parent section the child
	                           inherits it (it may not be able to reach the state dir itself) */
	OP_WAIT_START = 41,     /* () TS emits it after OP_USER/OP_CAPS, just before exec.
	                           First check that OP_EXEC's program resolves to an executable file
	                           (so a bad argv[0] fails `create`, as with runc), send MSG_CHILD_DONE,
	                           then open /proc/self/fd/<fifo> O_WRONLY (blocks until `start`), write "0" */
	OP_APPARMOR = 42,       /* (s:profile) write "exec <profile>" to /proc/self/attr/apparmor/exec (or attr/exec) */
	OP_SELINUX = 43,        /* (s:label) write to /proc/self/attr/exec */
	OP_NO_NEW_PRIVS = 44,   /* () */
	OP_UMASK = 45,          /* (i:mask) */
	OP_CHDIR = 46,          /* (s:path) */
	OP_USER = 47,           /* (i:uid, i:gid, i:ngroups, i:groups...) setgroups(ngroups >=0) (ngroups -1: leave);
	                           setresgid, setresuid keeping capabilities across (PR_SET_KEEPCAPS) */
	OP_CAPS = 48,           /* (i:bounding, i:effective, i:permitted, i:inheritable, i:ambient) bit masks;
	                           drops bounding first, then capset, then ambient raise */
	OP_NEW_KEYRING = 49,    /* (s:name) join a new session keyring named name (ENOSYS/EPERM: warn, go on) */
	OP_SECCOMP_INIT = 50,   /* (i:default action SCMP_ACT_* value, i:default errno) */
	OP_SECCOMP_ARCH = 51,   /* (s:libseccomp arch token, e.g. "x86_64", "x86", "x32") */
	OP_SECCOMP_RULE = 52,   /* (s:syscall name, i:action, i:errno or trace/log value, i:nargs,
	                           then per arg: i:index, i:op SCMP_CMP_*, i:value, i:valueTwo) */
	OP_SECCOMP_LOAD = 53,   /* (i:flags SECCOMP_FILTER_FLAG_*) load the filter built so far */
	OP_PERSONALITY = 54,    /* (i:persona) personality(2), e.g. PER_LINUX32 */
	OP_IOPRIO = 55,         /* (i:class IOPRIO_CLASS_*, i:level) ioprio_set for this process */
	OP_SCHEDULER = 56,      /* (i:policy, i:nice, i:priority, i:flags, i:runtime, i:deadline, i:period) sched_setattr */
	OP_CPU_AFFINITY = 57,   /* (i:ncpus, i:cpu...) sched_setaffinity to exactly these cpus */
	OP_CLOSE_FDS = 60,      /* (i:first) mark every fd >= first close-on-exec (the channel too) */
	OP_EXEC = 61,           /* (s:cwd, i:nargs, s:args..., s:env...) args[0] searched in the env's PATH
	                           if it has no "/", then execve */
};

/* OP_MOUNT mflags */
#define BERTH_MNT_IN_ROOT      0x1   /* resolve target inside the rootfs (openat2 RESOLVE_IN_ROOT) */
#define BERTH_MNT_MKDIR        0x2   /* create the target (dir, or empty file when the source is not a dir) */
#define BERTH_MNT_BIND_REMOUNT 0x4   /* after the bind, remount with MS_REMOUNT|MS_BIND|flags */
#define BERTH_MNT_PROPAGATION  0x8   /* only change propagation: mount(NULL, target, NULL, flags, NULL) */
#define BERTH_MNT_ENOENT_OK    0x10  /* skip when the target does not exist */

/*
 * Channel protocol (the channel is a unix stream socket at the fd named by the
 * environment variable _BERTH_CHANNEL_FD). Every message:
 *   u32 type  u32 length  payload[length]
 * Node → exec:  MSG_PLAN (payload = plan bytes), MSG_CONTINUE (payload = state JSON or empty)
 * exec → Node:  MSG_PID (payload "i32 pid" of the child in the host pid namespace),
 *               MSG_SYNC (payload = tag), MSG_CHILD_DONE (the child reached OP_WAIT_START
 *               or OP_EXEC: nothing more can fail before exec except the exec itself),
 *               MSG_ERROR (payload: i32 op index, i32 errno, then UTF-8 message),
 *               MSG_EXIT (payload "i32 wait status", OP_FOREGROUND only),
 *               MSG_WARNING (payload UTF-8 text; e.g. a clamped rlimit).
 * After MSG_CHILD_DONE the parent exits 0 unless OP_FOREGROUND. The child
 * reports a failed execve with MSG_ERROR (the channel is CLOEXEC, so a
 * successful execve closes it: EOF after MSG_CHILD_DONE means exec succeeded).
 */
enum berth_msg {
	MSG_PLAN = 1,
	MSG_CONTINUE = 2,
	MSG_PID = 10,
	MSG_SYNC = 11,
	MSG_CHILD_DONE = 12,
	MSG_ERROR = 13,
	MSG_EXIT = 14,
	MSG_WARNING = 15,
};

#endif
