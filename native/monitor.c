/*
 * berth-monitor: one per container. It stands between berthd and berth-exec so that the
 * container's parent is a small C process that outlives berthd: it holds the container's
 * stdio, writes the json-file log, serves attach clients, reaps, and records the exit.
 *
 *   berth-monitor --dir RUNDIR (--log FILE | --no-log) [--log-max-size BYTES]
 *                 [--log-max-files N] [--tty] [--stdin] [--stdin-once (ignored with --tty)]
 *                 [--oom-file PATH]... [--wait-attach MS] -- HELPER [ARGS...]
 *
 * Processes: M1 (spawned by Node) forks M2 and exits with HELPER's status once M2 reports
 * it, so that the spawner sees berth-exec's status. M2 (setsid, subreaper) forks M3, which
 * execs HELPER with every fd >= 3 inherited from the spawner (the launch channel). When
 * HELPER exits 0, the container's init has been reparented to M2; M2 records it in
 * RUNDIR/monitor.json and serves it until it exits, then writes RUNDIR/exit.json.
 *
 * Attach protocol on RUNDIR/attach.sock: frames [type u8, 0, 0, 0, length u32 BE] +
 * payload. Client: HELLO(16, flags: 1 stdout, 2 stderr, 4 stdin) first, then STDIN(0),
 * STDIN_CLOSE(17), RESIZE(18, rows u16 BE, cols u16 BE). Monitor: STDOUT(1), STDERR(2),
 * EXIT(3, the exit.json text) and then end of stream.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define FRAME_STDIN 0
#define FRAME_STDOUT 1
#define FRAME_STDERR 2
#define FRAME_EXIT 3
#define FRAME_HELLO 16
#define FRAME_STDIN_CLOSE 17
#define FRAME_RESIZE 18

#define WANT_STDOUT 1u
#define WANT_STDERR 2u
#define WANT_STDIN 4u

#define EXIT_MONITOR 125
#define MAX_CLIENTS 64
#define MAX_INHERITED 256
#define MAX_OOM_FILES 8
/* Docker's json-file cuts lines at 16 KiB; longer ones become partial records. */
#define PIECE_MAX 16384
/* A client that falls this far behind is dropped rather than slowing the container. */
#define CLIENT_OUT_CAP (1u << 20)
#define DRAIN_MS 2000
#define LINGER_MS 1000
#define IO_CHUNK 65536

#define ATTACH_SOCK "attach.sock"
#define CONSOLE_SOCK "console.sock"
#define EXIT_JSON "exit.json"
#define MONITOR_JSON "monitor.json"

/* ------------------------------------------------------------------ options */

static struct {
	const char *dir;
	const char *log_path;
	int no_log;
	long long log_max_size;
	long log_max_files;
	int tty, open_stdin, stdin_once;
	long long wait_attach_ms;
	const char *oom_files[MAX_OOM_FILES];
	int n_oom;
	char **helper;
} opt = { .log_max_size = 10LL << 20, .log_max_files = 3 };

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("berth-monitor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage: berth-monitor --dir RUNDIR (--log FILE | --no-log) [--log-max-size BYTES] "
	      "[--log-max-files N] [--tty] [--stdin] [--stdin-once] [--oom-file PATH]... [--wait-attach MS] -- HELPER [ARGS...]\n",
	      stderr);
	exit(EXIT_MONITOR);
}

static long long parse_int(const char *name, const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die_usage("%s: '%s' is not an integer in [%lld, %lld]", name, s, min, max);
	return v;
}

static void parse_options(int argc, char **argv)
{
	int i, separator = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			separator = 1;
			break;
		}
		if (strcmp(a, "--tty") == 0)
			opt.tty = 1;
		else if (strcmp(a, "--stdin") == 0)
			opt.open_stdin = 1;
		else if (strcmp(a, "--stdin-once") == 0)
			opt.stdin_once = 1;
		else if (strcmp(a, "--no-log") == 0)
			opt.no_log = 1;
		else if (strcmp(a, "--dir") == 0 || strcmp(a, "--log") == 0 || strcmp(a, "--log-max-size") == 0 ||
			 strcmp(a, "--log-max-files") == 0 || strcmp(a, "--oom-file") == 0 ||
			 strcmp(a, "--wait-attach") == 0) {
			if (!v)
				die_usage("%s needs a value", a);
			i++;
			if (strcmp(a, "--dir") == 0)
				opt.dir = v;
			else if (strcmp(a, "--log") == 0)
				opt.log_path = v;
			else if (strcmp(a, "--log-max-size") == 0)
				opt.log_max_size = parse_int(a, v, -1, LLONG_MAX);
			else if (strcmp(a, "--log-max-files") == 0)
				opt.log_max_files = (long)parse_int(a, v, 1, 1000);
			else if (strcmp(a, "--wait-attach") == 0)
				opt.wait_attach_ms = parse_int(a, v, 0, 24LL * 3600 * 1000);
			else {
				if (opt.n_oom == MAX_OOM_FILES)
					die_usage("at most %d --oom-file options", MAX_OOM_FILES);
				if (v[0] != '/')
					die_usage("--oom-file %s: must be an absolute path", v);
				opt.oom_files[opt.n_oom++] = v;
			}
		} else
			die_usage("unknown option '%s'", a);
	}
	if (!separator || i >= argc)
		die_usage("missing '-- HELPER [ARGS...]'");
	opt.helper = &argv[i];
	if (!opt.dir)
		die_usage("--dir is required");
	if (!opt.log_path && !opt.no_log)
		die_usage("one of --log FILE or --no-log is required");
	if (opt.log_path && opt.no_log)
		die_usage("--log and --no-log exclude each other");
	if (opt.log_path && opt.log_path[0] != '/')
		die_usage("--log %s: must be an absolute path (the monitor changes directory)", opt.log_path);
	if (opt.log_max_size == 0)
		opt.log_max_size = -1;
	/*
	 * As Docker: a client leaving a tty (or detaching with ctrl-p ctrl-q) leaves the
	 * container's stdin open, so that a later attach can type again. Closing the master
	 * would hang the session up, and writing the EOF character would end a shell that
	 * was only detached from. The process sees EOF when the user types ^D.
	 */
	if (opt.tty)
		opt.stdin_once = 0;
}

/* ------------------------------------------------------------------ small helpers */

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 in UTC with 9 fractional digits (30 characters for years 1000-9999). */
static void format_time(char *out, size_t len, const struct timespec *ts)
{
	struct tm tm;
	time_t t = ts->tv_sec;

	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts->tv_nsec);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Writes RUNDIR/name (cwd is RUNDIR) so that readers see the old file or the whole new one.
 * No fsync: RUNDIR is runtime state (tmpfs under /run); a host crash ends the container with
 * it, and rename() alone is atomic against berthd or the monitor dying.
 */
static int write_atomic(const char *name, const char *text)
{
	char tmp[64];
	int fd, r = 0;

	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_full(fd, text, strlen(text)) < 0)
		r = -1;
	if (close(fd) < 0)
		r = -1;
	if (r == 0 && rename(tmp, name) < 0)
		r = -1;
	if (r < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ inherited fds */

static int inherited[MAX_INHERITED];
static int n_inherited;

/* The spawner's fds >= 3 (the launch channel, preserved fds): only the helper keeps them. */
static void record_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d) {
		for (int fd = 3; fd < 1024 && n_inherited < MAX_INHERITED; fd++)
			if (fcntl(fd, F_GETFD) >= 0)
				inherited[n_inherited++] = fd;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end || end == e->d_name || fd < 3 || fd == dirfd(d))
			continue;
		if (n_inherited == MAX_INHERITED) {
			fprintf(stderr, "berth-monitor: more than %d inherited file descriptors\n", MAX_INHERITED);
			exit(EXIT_MONITOR);
		}
		inherited[n_inherited++] = (int)fd;
	}
	closedir(d);
}

static void close_inherited(void)
{
	for (int i = 0; i < n_inherited; i++)
		close(inherited[i]);
	n_inherited = 0;
}

/* ------------------------------------------------------------------ M2 state */

enum phase { P_HELPER, P_RUNNING, P_DRAIN, P_FINAL };

static enum phase phase = P_HELPER;
static int status_w = -1;          /* to M1: the helper's exit code, 4 bytes */
static int sig_fd = -1;
static int devnull = -1;
static int listen_fd = -1;
static int console_fd = -1;        /* listening console socket (--tty) */
static int console_conn = -1;      /* the helper's connection, before it sent the master */
static int master_received;
static int out_fd[2] = { -1, -1 }; /* read ends of the container's stdout / stderr pipes */
static int pty = -1;
static int stdin_w = -1;           /* pipe write end, or the pty master */
static int stdin_close_pending;
static char stdin_buf[IO_CHUNK];
static size_t stdin_len;
static pid_t helper_pid = -1, container_pid = -1;
static int exit_status;
static struct timespec started_at, finished_at;
static long long drain_deadline, linger_deadline;
/* --wait-attach: output and the exit wait for the first client (an exec's process runs at
 * once, before berthd can connect; without this its first output and its exit are lost). */
static int held;
static long long hold_deadline;
static long long oom_before[MAX_OOM_FILES];
static char exit_text[512];
static sigset_t old_mask;

static void report(int code)
{
	if (status_w < 0)
		return;
	write_full(status_w, &code, sizeof code);
	close_fd(&status_w);
}

static void remove_sockets(void)
{
	unlink(ATTACH_SOCK);
	if (opt.tty)
		unlink(CONSOLE_SOCK);
}

/* Failure before the container is known: the spawner learns it from M1's exit code. */
static void fail_early(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("berth-monitor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	report(code);
	remove_sockets();
	_exit(0);
}

/* ------------------------------------------------------------------ log */

static struct {
	int fd;
	long long size;
	char buf[IO_CHUNK];
	size_t len;
	int failed;
} lg = { .fd = -1 };

/* Worst case: every byte becomes a 6-byte \u escape. */
static char rec[PIECE_MAX * 6 + 128];

static struct {
	char b[PIECE_MAX];
	size_t len;
} line[3];

static int log_open(void)
{
	struct stat st;

	lg.fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (lg.fd < 0)
		return -1;
	if (fstat(lg.fd, &st) < 0) {
		int e = errno;

		close_fd(&lg.fd);
		errno = e;
		return -1;
	}
	lg.size = st.st_size;
	return 0;
}

static void log_flush(void)
{
	if (lg.fd < 0 || lg.len == 0)
		return;
	if (write_full(lg.fd, lg.buf, lg.len) < 0)
		lg.failed = errno;
	else
		lg.size += (long long)lg.len;
	lg.len = 0;
}

/* FILE → FILE.1 → FILE.2 …; max-files counts FILE itself. */
static void log_rotate(void)
{
	char from[PATH_MAX], to[PATH_MAX];

	log_flush();
	close_fd(&lg.fd);
	if (opt.log_max_files <= 1)
		unlink(opt.log_path);
	else {
		snprintf(to, sizeof to, "%s.%ld", opt.log_path, opt.log_max_files - 1);
		unlink(to);
		for (long i = opt.log_max_files - 1; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof from, "%s", opt.log_path);
			else
				snprintf(from, sizeof from, "%s.%ld", opt.log_path, i - 1);
			snprintf(to, sizeof to, "%s.%ld", opt.log_path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				lg.failed = errno;
		}
	}
	if (log_open() < 0)
		lg.failed = errno;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is invalid or cut short. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static size_t json_escape(char *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	while (n) {
		unsigned char c = *p;
		size_t l;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			out[o++] = (char)c;
			p++, n--;
			continue;
		}
		if (c < 0x80) {
			out[o++] = '\\';
			switch (c) {
			case '"': out[o++] = '"'; break;
			case '\\': out[o++] = '\\'; break;
			case '\n': out[o++] = 'n'; break;
			case '\r': out[o++] = 'r'; break;
			case '\t': out[o++] = 't'; break;
			case '\b': out[o++] = 'b'; break;
			case '\f': out[o++] = 'f'; break;
			default:
				out[o++] = 'u', out[o++] = '0', out[o++] = '0';
				out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
			}
			p++, n--;
			continue;
		}
		l = utf8_len(p, n);
		if (l == 0) {
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
			p++, n--;
			continue;
		}
		memcpy(out + o, p, l);
		o += l;
		p += l, n -= l;
	}
	return o;
}

static void log_record(int stream, const char *data, size_t n)
{
	static const char *names[3] = { "", "stdout", "stderr" };
	struct timespec ts;
	char when[96];
	size_t len;

	/* After a failed rotation (ENOSPC, EMFILE) every record retries the file. */
	if (lg.fd < 0 && (opt.no_log || log_open() < 0))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_time(when, sizeof when, &ts);
	len = 0;
	memcpy(rec, "{\"log\":\"", 8);
	len = 8;
	len += json_escape(rec + len, (const unsigned char *)data, n);
	len += (size_t)snprintf(rec + len, sizeof rec - len, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", names[stream], when);
	if (opt.log_max_size > 0 && lg.size + (long long)(lg.len + len) > opt.log_max_size && lg.size + (long long)lg.len > 0)
		log_rotate();
	if (lg.fd < 0)
		return;
	if (lg.len + len > sizeof lg.buf) {
		log_flush();
		if (len > sizeof lg.buf) {
			if (write_full(lg.fd, rec, len) < 0)
				lg.failed = errno;
			else
				lg.size += (long long)len;
			return;
		}
	}
	memcpy(lg.buf + lg.len, rec, len);
	lg.len += len;
}

/* A full piece is cut before a UTF-8 sequence it would split; the tail starts the next piece. */
static size_t piece_cut(const unsigned char *b, size_t len)
{
	for (size_t k = 1; k <= 3 && k <= len; k++) {
		unsigned char c = b[len - k];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue;
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > k && k < len ? len - k : len;
	}
	return len;
}

static void log_feed(int stream, const char *p, size_t n)
{
	if (opt.no_log)
		return;
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;

		while (seg) {
			size_t room = PIECE_MAX - line[stream].len;
			size_t take = seg < room ? seg : room;

			memcpy(line[stream].b + line[stream].len, p, take);
			line[stream].len += take;
			p += take, n -= take, seg -= take;
			if (seg == 0 && nl) {
				log_record(stream, line[stream].b, line[stream].len);
				line[stream].len = 0;
			} else if (line[stream].len == PIECE_MAX) {
				size_t cut = piece_cut((unsigned char *)line[stream].b, PIECE_MAX);

				log_record(stream, line[stream].b, cut);
				memmove(line[stream].b, line[stream].b + cut, PIECE_MAX - cut);
				line[stream].len = PIECE_MAX - cut;
			}
		}
	}
}

static void log_flush_partial(int stream)
{
	if (line[stream].len) {
		log_record(stream, line[stream].b, line[stream].len);
		line[stream].len = 0;
	}
}

/* ------------------------------------------------------------------ clients */

struct client {
	int fd;
	int hello;
	unsigned flags;
	unsigned char hdr[8];
	unsigned hdrlen;
	unsigned type;
	uint32_t left;
	unsigned char small[4];
	unsigned smalllen;
	char *out;
	size_t outlen, outoff, outcap;
	int exit_queued;
	int shut;
};

static struct client clients[MAX_CLIENTS];
static int nclients;

static void drop_client(struct client *c)
{
	if (c->fd < 0)
		return;
	if (opt.stdin_once && (c->flags & WANT_STDIN))
		stdin_close_pending = 1;
	close_fd(&c->fd);
	free(c->out);
	c->out = NULL;
	c->outlen = c->outoff = c->outcap = 0;
}

static void compact_clients(void)
{
	int j = 0;

	for (int i = 0; i < nclients; i++)
		if (clients[i].fd >= 0)
			clients[j++] = clients[i];
	nclients = j;
}

static void client_flush(struct client *c)
{
	while (c->fd >= 0 && c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			drop_client(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->fd < 0)
		return;
	c->outlen = c->outoff = 0;
	if (c->outcap > IO_CHUNK) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	if (c->exit_queued && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
	}
}

static void client_send(struct client *c, unsigned type, const void *data, size_t len)
{
	size_t pending, need;
	unsigned char hdr[8] = { (unsigned char)type, 0, 0, 0, (unsigned char)(len >> 24), (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8), (unsigned char)len };

	if (c->fd < 0 || c->exit_queued)
		return;
	pending = c->outlen - c->outoff;
	if (type != FRAME_EXIT && pending + 8 + len > CLIENT_OUT_CAP) {
		drop_client(c);
		return;
	}
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, pending);
		c->outlen = pending;
		c->outoff = 0;
	}
	need = c->outlen + 8 + len;
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			drop_client(c);
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, hdr, 8);
	if (len)
		memcpy(c->out + c->outlen + 8, data, len);
	c->outlen += 8 + len;
	if (type == FRAME_EXIT)
		c->exit_queued = 1;
	client_flush(c);
}

static void broadcast(int stream, const char *data, size_t len)
{
	unsigned want = stream == FRAME_STDOUT ? WANT_STDOUT : WANT_STDERR;

	for (int i = 0; i < nclients; i++)
		if (clients[i].fd >= 0 && clients[i].hello && (clients[i].flags & want))
			client_send(&clients[i], (unsigned)stream, data, len);
}

static void stdin_flush(void);

static void release_hold(void)
{
	long long until;

	if (!held)
		return;
	held = 0;
	until = now_ms() + DRAIN_MS;
	if (phase == P_DRAIN && drain_deadline < until)
		drain_deadline = until;
}

static void stdin_queue(const unsigned char *p, size_t n)
{
	if (stdin_w < 0 || stdin_close_pending)
		return;
	if (n > sizeof stdin_buf - stdin_len)
		n = sizeof stdin_buf - stdin_len; /* cannot happen: clients are read only into an empty buffer */
	memcpy(stdin_buf + stdin_len, p, n);
	stdin_len += n;
}

static void frame_done(struct client *c)
{
	switch (c->type) {
	case FRAME_HELLO:
		c->hello = 1;
		release_hold();
		c->flags = c->small[0] & (WANT_STDOUT | WANT_STDERR | WANT_STDIN);
		if (c->flags & WANT_STDIN && !opt.open_stdin)
			c->flags &= ~WANT_STDIN;
		if (phase == P_FINAL)
			client_send(c, FRAME_EXIT, exit_text, strlen(exit_text));
		break;
	case FRAME_STDIN_CLOSE:
		if (c->flags & WANT_STDIN) {
			c->flags &= ~WANT_STDIN;
			if (opt.stdin_once)
				stdin_close_pending = 1;
		}
		break;
	case FRAME_RESIZE:
		if (pty >= 0) {
			struct winsize ws = { .ws_row = (unsigned short)(c->small[0] << 8 | c->small[1]),
					      .ws_col = (unsigned short)(c->small[2] << 8 | c->small[3]) };
			ioctl(pty, TIOCSWINSZ, &ws);
		}
		break;
	}
	c->hdrlen = 0;
}

static void client_input(struct client *c, const unsigned char *p, size_t n)
{
	while (n && c->fd >= 0) {
		if (c->hdrlen < 8) {
			size_t take = 8 - c->hdrlen < n ? 8 - c->hdrlen : n;

			memcpy(c->hdr + c->hdrlen, p, take);
			c->hdrlen += (unsigned)take;
			p += take, n -= take;
			if (c->hdrlen < 8)
				return;
			c->type = c->hdr[0];
			c->left = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 | (uint32_t)c->hdr[6] << 8 | c->hdr[7];
			c->smalllen = 0;
			if ((!c->hello && c->type != FRAME_HELLO) || (c->hello && c->type == FRAME_HELLO) ||
			    (c->type == FRAME_HELLO && c->left != 1) || (c->type == FRAME_RESIZE && c->left != 4) ||
			    (c->type == FRAME_STDIN_CLOSE && c->left != 0) ||
			    (c->type != FRAME_HELLO && c->type != FRAME_RESIZE && c->type != FRAME_STDIN_CLOSE &&
			     c->type != FRAME_STDIN)) {
				drop_client(c); /* protocol error */
				return;
			}
			if (c->left == 0)
				frame_done(c);
			continue;
		}
		size_t take = c->left < n ? c->left : n;

		if (c->type == FRAME_STDIN) {
			if (c->flags & WANT_STDIN && phase < P_FINAL)
				stdin_queue(p, take);
		} else {
			memcpy(c->small + c->smalllen, p, take);
			c->smalllen += (unsigned)take;
		}
		c->left -= (uint32_t)take;
		p += take, n -= take;
		if (c->left == 0)
			frame_done(c);
	}
}

static void client_read(struct client *c)
{
	static unsigned char buf[IO_CHUNK];
	ssize_t n;

	do
		n = read(c->fd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		drop_client(c);
		return;
	}
	client_input(c, buf, (size_t)n);
	stdin_flush();
}

static void accept_client(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (nclients == MAX_CLIENTS) {
		close(fd);
		return;
	}
	memset(&clients[nclients], 0, sizeof clients[nclients]);
	clients[nclients].fd = fd;
	nclients++;
}

/* ------------------------------------------------------------------ container stdio */

static void stdin_flush(void)
{
	while (stdin_w >= 0 && stdin_len) {
		ssize_t n = write(stdin_w, stdin_buf, stdin_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			stdin_len = 0; /* the container closed its stdin: what it did not read is lost */
			if (stdin_w != pty)
				close_fd(&stdin_w);
			return;
		}
		memmove(stdin_buf, stdin_buf + n, stdin_len - (size_t)n);
		stdin_len -= (size_t)n;
	}
	if (stdin_close_pending && stdin_len == 0 && stdin_w >= 0 && stdin_w != pty)
		close_fd(&stdin_w);
}

static void output_read(int stream, int *fdp)
{
	static char buf[IO_CHUNK];
	ssize_t n;

	do
		n = read(*fdp, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* EOF, or EIO from a pty whose every slave fd is closed */
		log_flush_partial(stream);
		log_flush();
		if (*fdp == pty) {
			if (stdin_w == pty)
				stdin_w = -1;
			stdin_len = 0;
		}
		close_fd(fdp);
		return;
	}
	log_feed(stream, buf, (size_t)n);
	log_flush();
	broadcast(stream, buf, (size_t)n);
}

static void console_accept(void)
{
	int fd = accept4(console_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	close_fd(&console_conn);
	console_conn = fd;
}

/* The helper sends the pty master (the console-socket protocol of runc). */
static void console_receive(void)
{
	char name[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	do
		n = recvmsg(console_conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	close_fd(&console_conn);
	if (fd < 0)
		return; /* the helper gave up; a later connection may still bring the master */
	if (master_received) {
		close(fd);
		return;
	}
	set_nonblock(fd);
	pty = fd;
	master_received = 1;
	if (opt.open_stdin)
		stdin_w = pty;
	close_fd(&console_fd);
	unlink(CONSOLE_SOCK);
}

/* ------------------------------------------------------------------ container lifecycle */

static long long read_oom(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (char *p = buf; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, "oom_kill ", 9) == 0)
			return strtoll(p + 9, NULL, 10);
	}
	return -1;
}

static int parse_pid_list(const char *s, pid_t *pids, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s)
			break;
		if (v > 0)
			pids[n++] = (pid_t)v;
		s = end;
		while (*s == ' ' || *s == '\n')
			s++;
	}
	return n;
}

/* Field 22 (starttime) and 4 (ppid) of /proc/PID/stat; the name may hold spaces and ')'. */
static int proc_stat(pid_t pid, long *ppid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* After ") ": state is field 3 of stat(5), ppid 4, starttime 22. */
	p++;
	for (int field = 3; field <= 22; field++) {
		char *end;
		unsigned long long v;

		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		v = strtoull(p, &end, 10);
		if (field == 4)
			*ppid = (long)v;
		else if (field == 22)
			*start = v;
		p = end == p ? strchr(p, ' ') : end;
		if (!p)
			return -1;
	}
	return 0;
}

/* After the helper exits, its orphans are our children; the oldest is the container's init. */
static pid_t find_container(void)
{
	pid_t pids[256];
	int n = 0;
	char path[64];
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[4096];
		ssize_t r = read(fd, buf, sizeof buf - 1);

		close(fd);
		if (r >= 0) {
			buf[r] = 0;
			n = parse_pid_list(buf, pids, 256);
		}
	} else {
		DIR *d = opendir("/proc");
		struct dirent *e;

		while (d && (e = readdir(d)) != NULL && n < 256) {
			long ppid;
			unsigned long long st;
			pid_t pid = (pid_t)atoi(e->d_name);

			if (pid > 0 && proc_stat(pid, &ppid, &st) == 0 && ppid == getpid())
				pids[n++] = pid;
		}
		if (d)
			closedir(d);
	}
	pid_t best = -1;
	unsigned long long best_start = 0;

	for (int i = 0; i < n; i++) {
		long ppid;
		unsigned long long st;

		if (proc_stat(pids[i], &ppid, &st) < 0)
			continue;
		if (best < 0 || st < best_start || (st == best_start && pids[i] < best)) {
			best = pids[i];
			best_start = st;
		}
	}
	return best;
}

static void helper_exited(int st)
{
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	char text[128];

	helper_pid = -1;
	if (code != 0) {
		report(code);
		remove_sockets();
		_exit(0);
	}
	container_pid = find_container();
	if (container_pid < 0)
		fail_early(EXIT_MONITOR, "%s exited 0 but left no process to monitor", opt.helper[0]);
	clock_gettime(CLOCK_REALTIME, &started_at);
	if (held)
		hold_deadline = now_ms() + opt.wait_attach_ms;
	for (int i = 0; i < opt.n_oom; i++)
		oom_before[i] = read_oom(opt.oom_files[i]);
	snprintf(text, sizeof text, "{\"monitorPid\":%d,\"containerPid\":%d}\n", (int)getpid(), (int)container_pid);
	if (write_atomic(MONITOR_JSON, text) < 0)
		fprintf(stderr, "berth-monitor: write %s/%s: %s\n", opt.dir, MONITOR_JSON, strerror(errno));
	/* From here on nothing may hold the spawner's stderr (it may be a pipe someone waits on). */
	dup2(devnull, 2);
	phase = P_RUNNING;
	report(0);
}

static void reap(void)
{
	int st;
	pid_t r;

	if (phase == P_HELPER) {
		/* Only the helper: its orphans must stay unreaped until we know which is the container. */
		do
			r = waitpid(helper_pid, &st, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r != helper_pid)
			return;
		helper_exited(st);
	}
	for (;;) {
		r = waitpid(-1, &st, WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		if (r == container_pid && phase == P_RUNNING) {
			exit_status = st;
			clock_gettime(CLOCK_REALTIME, &finished_at);
			phase = P_DRAIN;
			drain_deadline = now_ms() + DRAIN_MS;
		}
	}
}

static void finalize(void)
{
	char started[96], finished[96], sig[16];
	int oom = 0;
	int code = WIFEXITED(exit_status) ? WEXITSTATUS(exit_status) : 128 + WTERMSIG(exit_status);

	for (int s = 0; s < 2; s++) {
		if (out_fd[s] >= 0)
			close_fd(&out_fd[s]);
	}
	if (pty >= 0) {
		if (stdin_w == pty)
			stdin_w = -1;
		close_fd(&pty);
	}
	close_fd(&stdin_w);
	close_fd(&console_conn);
	close_fd(&console_fd);
	log_flush_partial(FRAME_STDOUT);
	log_flush_partial(FRAME_STDERR);
	log_flush();
	if (lg.fd >= 0) {
		fdatasync(lg.fd);
		close_fd(&lg.fd);
	}
	for (int i = 0; i < opt.n_oom; i++) {
		long long after = read_oom(opt.oom_files[i]);

		if (after > 0 && after > (oom_before[i] < 0 ? 0 : oom_before[i]))
			oom = 1;
	}
	if (WIFSIGNALED(exit_status))
		snprintf(sig, sizeof sig, "%d", WTERMSIG(exit_status));
	else
		strcpy(sig, "null");
	format_time(started, sizeof started, &started_at);
	format_time(finished, sizeof finished, &finished_at);
	snprintf(exit_text, sizeof exit_text,
		 "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":%s,\"startedAt\":\"%s\",\"finishedAt\":\"%s\"}\n", code, sig,
		 oom ? "true" : "false", started, finished);
	write_atomic(EXIT_JSON, exit_text);
	phase = P_FINAL;
	linger_deadline = now_ms() + LINGER_MS;
	for (int i = 0; i < nclients; i++)
		if (clients[i].fd >= 0 && clients[i].hello)
			client_send(&clients[i], FRAME_EXIT, exit_text, strlen(exit_text));
}

static void signal_read(void)
{
	struct signalfd_siginfo si;
	ssize_t n;
	int child = 0;

	for (;;) {
		n = read(sig_fd, &si, sizeof si);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof si)
			break;
		if (si.ssi_signo == SIGCHLD)
			child = 1;
		/* SIGTERM, SIGINT, SIGHUP: the monitor lives as long as its container. */
	}
	if (child)
		reap();
}

/* ------------------------------------------------------------------ M2 */

static int listen_unix(const char *name, int mode)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	strcpy(addr.sun_path, name);
	unlink(name);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(name, (mode_t)mode) < 0 || listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void event_loop(void)
{
	struct pollfd pf[8 + MAX_CLIENTS];

	for (;;) {
		int n = 0, timeout = -1, i_sig, i_listen = -1, i_cons = -1, i_conn = -1, i_out[2] = { -1, -1 }, i_pty = -1,
		    i_stdin = -1, i_client;
		long long now;

		compact_clients();
		now = now_ms();
		if (held && now >= hold_deadline)
			release_hold();
		if (held) {
			if (hold_deadline != LLONG_MAX)
				timeout = (int)(hold_deadline - now);
		} else if (phase == P_DRAIN) {
			int open_out = out_fd[0] >= 0 || out_fd[1] >= 0 || pty >= 0 || (opt.tty && !master_received);

			if (!open_out || now >= drain_deadline)
				finalize();
			else
				timeout = (int)(drain_deadline - now);
		}
		if (phase == P_FINAL) {
			compact_clients();
			if (nclients == 0 || now >= linger_deadline) {
				remove_sockets();
				_exit(0);
			}
			timeout = (int)(linger_deadline - now);
		}

		i_sig = n;
		pf[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		if (listen_fd >= 0 && nclients < MAX_CLIENTS) {
			i_listen = n;
			pf[n++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		}
		if (console_fd >= 0 && console_conn < 0) {
			i_cons = n;
			pf[n++] = (struct pollfd){ .fd = console_fd, .events = POLLIN };
		}
		if (console_conn >= 0) {
			i_conn = n;
			pf[n++] = (struct pollfd){ .fd = console_conn, .events = POLLIN };
		}
		for (int s = 0; s < 2; s++)
			if (out_fd[s] >= 0 && !held) {
				i_out[s] = n;
				pf[n++] = (struct pollfd){ .fd = out_fd[s], .events = POLLIN };
			}
		/* Held, the pty is left alone: a hung-up master would report POLLHUP in a busy loop. */
		if (pty >= 0 && (!held || (stdin_len && stdin_w == pty))) {
			i_pty = n;
			pf[n++] = (struct pollfd){ .fd = pty, .events = (short)((held ? 0 : POLLIN) | (stdin_len && stdin_w == pty ? POLLOUT : 0)) };
		}
		if (stdin_w >= 0 && stdin_w != pty && stdin_len) {
			i_stdin = n;
			pf[n++] = (struct pollfd){ .fd = stdin_w, .events = POLLOUT };
		}
		i_client = n;
		for (int i = 0; i < nclients; i++) {
			struct client *c = &clients[i];
			short ev = 0;

			if (stdin_len == 0)
				ev |= POLLIN;
			if (c->outoff < c->outlen)
				ev |= POLLOUT;
			pf[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}

		if (poll(pf, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			_exit(EXIT_MONITOR);
		}

		if (pf[i_sig].revents)
			signal_read();
		for (int s = 0; s < 2; s++)
			if (i_out[s] >= 0 && pf[i_out[s]].revents && out_fd[s] >= 0)
				output_read(s + 1, &out_fd[s]);
		if (i_pty >= 0 && pty >= 0) {
			if (pf[i_pty].revents & POLLOUT)
				stdin_flush();
			if (!held && pf[i_pty].revents & (POLLIN | POLLHUP | POLLERR))
				output_read(FRAME_STDOUT, &pty);
		}
		if (i_stdin >= 0 && pf[i_stdin].revents) {
			if (pf[i_stdin].revents & (POLLERR | POLLHUP)) {
				stdin_len = 0;
				close_fd(&stdin_w);
			} else
				stdin_flush();
		}
		for (int i = 0; i < n - i_client; i++) {
			struct client *c = &clients[i];

			if (c->fd < 0 || pf[i_client + i].fd != c->fd)
				continue;
			if (pf[i_client + i].revents & POLLOUT)
				client_flush(c);
			if (c->fd >= 0 && pf[i_client + i].revents & (POLLIN | POLLHUP | POLLERR)) {
				if (stdin_len == 0)
					client_read(c);
				else if (pf[i_client + i].revents & (POLLHUP | POLLERR))
					drop_client(c);
			}
		}
		if (i_conn >= 0 && console_conn >= 0 && pf[i_conn].revents)
			console_receive();
		if (i_cons >= 0 && console_fd >= 0 && pf[i_cons].revents)
			console_accept();
		if (i_listen >= 0 && pf[i_listen].revents)
			accept_client();
		stdin_flush();
	}
}

static void run_m2(void)
{
	sigset_t mask;
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, exec_p[2], cwd_fd, e;
	ssize_t n;

	if (setsid() < 0)
		fail_early(EXIT_MONITOR, "setsid: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fail_early(EXIT_MONITOR, "become a child subreaper: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &mask, &old_mask) < 0)
		fail_early(EXIT_MONITOR, "sigprocmask: %s", strerror(errno));
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		fail_early(EXIT_MONITOR, "signalfd: %s", strerror(errno));
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		fail_early(EXIT_MONITOR, "open /dev/null: %s", strerror(errno));
	cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd_fd < 0)
		fail_early(EXIT_MONITOR, "open the current directory: %s", strerror(errno));
	if (chdir(opt.dir) < 0)
		fail_early(EXIT_MONITOR, "--dir %s: %s", opt.dir, strerror(errno));
	if (!opt.no_log && log_open() < 0)
		fail_early(EXIT_MONITOR, "open the log %s: %s", opt.log_path, strerror(errno));

	if (opt.tty) {
		console_fd = listen_unix(CONSOLE_SOCK, 0600);
		if (console_fd < 0)
			fail_early(EXIT_MONITOR, "listen on %s/%s: %s", opt.dir, CONSOLE_SOCK, strerror(errno));
	} else {
		if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
		    (opt.open_stdin && pipe2(in_p, O_CLOEXEC) < 0))
			fail_early(EXIT_MONITOR, "pipe: %s", strerror(errno));
	}
	listen_fd = listen_unix(ATTACH_SOCK, 0600);
	if (listen_fd < 0)
		fail_early(EXIT_MONITOR, "listen on %s/%s: %s", opt.dir, ATTACH_SOCK, strerror(errno));
	if (pipe2(exec_p, O_CLOEXEC) < 0)
		fail_early(EXIT_MONITOR, "pipe: %s", strerror(errno));

	helper_pid = fork();
	if (helper_pid < 0)
		fail_early(EXIT_MONITOR, "fork: %s", strerror(errno));
	if (helper_pid == 0) {
		/* M3: the helper gets clean signal state, the container's stdio and the spawner's fds. */
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		if (fchdir(cwd_fd) < 0 ||
		    dup2(opt.tty ? devnull : in_p[0] >= 0 ? in_p[0] : devnull, 0) < 0 ||
		    dup2(opt.tty ? devnull : out_p[1], 1) < 0 || dup2(opt.tty ? devnull : err_p[1], 2) < 0)
			e = errno;
		else {
			execvp(opt.helper[0], opt.helper);
			e = errno;
		}
		write_full(exec_p[1], &e, sizeof e);
		_exit(127);
	}
	close(exec_p[1]);
	/* Held from the start: the helper's process may print before the helper exits. The
	 * bound starts when berthd gets control back (the helper's exit). */
	if (opt.wait_attach_ms > 0) {
		held = 1;
		hold_deadline = LLONG_MAX;
	}
	do
		n = read(exec_p[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(exec_p[0]);
	if (n == (ssize_t)sizeof e) {
		int st;

		while (waitpid(helper_pid, &st, 0) < 0 && errno == EINTR)
			;
		fail_early(e == ENOENT ? 127 : 126, "exec %s: %s", opt.helper[0], strerror(e));
	}

	close_inherited();
	close(cwd_fd);
	close_fd(&in_p[0]);
	close_fd(&out_p[1]);
	close_fd(&err_p[1]);
	out_fd[0] = out_p[0];
	out_fd[1] = err_p[0];
	stdin_w = in_p[1];
	for (int s = 0; s < 2; s++)
		if (out_fd[s] >= 0 && set_nonblock(out_fd[s]) < 0)
			fail_early(EXIT_MONITOR, "fcntl: %s", strerror(errno));
	if (stdin_w >= 0 && set_nonblock(stdin_w) < 0)
		fail_early(EXIT_MONITOR, "fcntl: %s", strerror(errno));
	if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0)
		fail_early(EXIT_MONITOR, "dup2: %s", strerror(errno));
	reap(); /* the helper may have exited before the signalfd was polled */
	event_loop();
}

/* ------------------------------------------------------------------ M1 */

int main(int argc, char **argv)
{
	int status_p[2], code;
	char path[PATH_MAX];
	struct stat st;
	pid_t m2;
	ssize_t n;

	parse_options(argc, argv);
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) {
			fprintf(stderr, "berth-monitor: cannot open /dev/null as fd %d\n", fd);
			return EXIT_MONITOR;
		}
	record_inherited();
	if (stat(opt.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "berth-monitor: --dir %s: %s\n", opt.dir, errno ? strerror(errno) : "not a directory");
		return EXIT_MONITOR;
	}
	if (strlen(opt.dir) + sizeof "/" MONITOR_JSON > sizeof path) {
		fprintf(stderr, "berth-monitor: --dir %s: path too long\n", opt.dir);
		return EXIT_MONITOR;
	}
	/* A restarted container reuses RUNDIR: the previous run's records must not be read as this one's. */
	snprintf(path, sizeof path, "%s/%s", opt.dir, EXIT_JSON);
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "berth-monitor: remove %s: %s\n", path, strerror(errno));
		return EXIT_MONITOR;
	}
	snprintf(path, sizeof path, "%s/%s", opt.dir, MONITOR_JSON);
	unlink(path);
	if (pipe2(status_p, O_CLOEXEC) < 0) {
		perror("berth-monitor: pipe");
		return EXIT_MONITOR;
	}
	fflush(stderr);
	m2 = fork();
	if (m2 < 0) {
		perror("berth-monitor: fork");
		return EXIT_MONITOR;
	}
	if (m2 == 0) {
		close(status_p[0]);
		status_w = status_p[1];
		run_m2();
		_exit(EXIT_MONITOR);
	}
	close(status_p[1]);
	close_inherited();
	do
		n = read(status_p[0], &code, sizeof code);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof code) {
		fprintf(stderr, "berth-monitor: the monitor process died before the helper %s finished\n", opt.helper[0]);
		return EXIT_MONITOR;
	}
	return code;
}
