/*
 * berth-recvtty: receives a container's pty master on a console socket (as runc's
 * recvtty does) and connects it to this process's stdio.
 *
 *   berth-recvtty [--once] [--mode print|null] [--no-stdin] SOCKET_PATH
 *
 * Listens on SOCKET_PATH, accepts a connection, receives the master (SCM_RIGHTS) and
 * copies its output to stdout (mode print) or discards it (mode null), and stdin to it
 * (unless --no-stdin), until the pty hangs up. Then the next connection, or the end
 * with --once. Only the container's output goes to stdout; diagnostics go to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static const char *sock_path;

static void on_signal(int sig)
{
	(void)sig;
	if (sock_path)
		unlink(sock_path);
	_exit(0);
}

static void usage(void)
{
	fprintf(stderr, "usage: berth-recvtty [--once] [--mode print|null] [--no-stdin] SOCKET_PATH\n");
	exit(2);
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_master(int conn, char *name, size_t namelen)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = name, .iov_len = namelen - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	do
		n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	name[n] = 0;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	if (fd < 0)
		errno = EBADMSG;
	return fd;
}

/* Copies between the master and stdio until the pty hangs up. */
static void serve(int master, int print, int *stdin_open)
{
	char buf[16384];

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = master, .events = POLLIN },
			{ .fd = *stdin_open ? 0 : -1, .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("berth-recvtty: poll");
			return;
		}
		if (p[0].revents) {
			n = read(master, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return; /* EIO: every slave fd is closed */
			if (print && write_full(1, buf, (size_t)n) < 0) {
				perror("berth-recvtty: write stdout");
				return;
			}
		}
		if (p[1].revents) {
			n = read(0, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				*stdin_open = 0;
			else if (write_full(master, buf, (size_t)n) < 0)
				return;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int once = 0, print = 1, stdin_open = 1, lfd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0)
			once = 1;
		else if (strcmp(argv[i], "--no-stdin") == 0)
			stdin_open = 0;
		else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "print") == 0)
				print = 1;
			else if (strcmp(argv[i], "null") == 0)
				print = 0;
			else
				usage();
		} else if (argv[i][0] == '-' || sock_path)
			usage();
		else
			sock_path = argv[i];
	}
	if (!sock_path)
		usage();
	if (strlen(sock_path) >= sizeof addr.sun_path) {
		fprintf(stderr, "berth-recvtty: socket path %s is too long (max %zu bytes)\n", sock_path,
			sizeof addr.sun_path - 1);
		return 1;
	}
	strcpy(addr.sun_path, sock_path);
	if (lstat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sock_path);

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 16) < 0) {
		fprintf(stderr, "berth-recvtty: listen on %s: %s\n", sock_path, strerror(errno));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);

	for (;;) {
		char name[256];
		int conn, master;

		conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "berth-recvtty: accept on %s: %s\n", sock_path, strerror(errno));
			break;
		}
		master = recv_master(conn, name, sizeof name);
		close(conn);
		if (master < 0) {
			fprintf(stderr, "berth-recvtty: no pty master received: %s\n", strerror(errno));
			continue;
		}
		serve(master, print, &stdin_open);
		close(master);
		if (once)
			break;
	}
	close(lfd);
	unlink(sock_path);
	return 0;
}
