/*
 * berth-init: the minimal init of `docker run --init` (the role of Docker's tini), bind-mounted
 * into the container as /sbin/docker-init and run as its pid 1.
 *
 *   berth-init [--] COMMAND [ARGS...]
 *
 * Runs COMMAND as its child in a process group of its own (the terminal's foreground group
 * when stdin is a tty), forwards every catchable signal to that child, reaps every process
 * that gets reparented to it, and exits with the child's exit code (128+N when signal N
 * killed it). Outside a pid namespace it makes itself a child subreaper so that it still
 * reaps the command's orphans.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Raised by a faulting instruction in this process: blocking them would hide a crash. */
static const int synchronous[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS };

int main(int argc, char **argv)
{
	sigset_t all, old;
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	char **cmd = argv + 1;
	pid_t child;

	if (argc > 1 && strcmp(argv[1], "--") == 0)
		cmd++;
	if (!*cmd || (cmd == argv + 1 && cmd[0][0] == '-')) {
		fprintf(stderr, "usage: berth-init [--] COMMAND [ARGS...]\n");
		return 2;
	}
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fprintf(stderr, "berth-init: cannot become a child subreaper (%s); orphans will not be reaped\n",
			strerror(errno));

	sigfillset(&all);
	for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++)
		sigdelset(&all, synchronous[i]);
	/* Blocked before fork, so that no SIGCHLD or forwarded signal can be lost. */
	if (sigprocmask(SIG_BLOCK, &all, &old) < 0) {
		perror("berth-init: sigprocmask");
		return 1;
	}
	/* The child takes the terminal from the background; that raises SIGTTOU unless ignored. */
	sigaction(SIGTTIN, &ign, NULL);
	sigaction(SIGTTOU, &ign, NULL);

	child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 1;
	}
	if (child == 0) {
		int e;

		setpgid(0, 0);
		if (isatty(0) && tcsetpgrp(0, getpgrp()) < 0 && errno != ENOTTY && errno != ENXIO)
			fprintf(stderr, "berth-init: make the command the terminal's foreground: %s\n", strerror(errno));
		sigaction(SIGTTIN, &dfl, NULL);
		sigaction(SIGTTOU, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(cmd[0], cmd);
		e = errno;
		fprintf(stderr, "berth-init: exec %s: %s\n", cmd[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	setpgid(child, child); /* also here: whichever of the two runs first wins the race */

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("berth-init: sigwaitinfo");
			return 1;
		}
		if (sig != SIGCHLD) {
			if (kill(child, sig) < 0 && errno != ESRCH)
				fprintf(stderr, "berth-init: forward signal %d: %s\n", sig, strerror(errno));
			continue;
		}
		for (;;) {
			int st;
			pid_t pid = waitpid(-1, &st, WNOHANG);

			if (pid < 0 && errno == EINTR)
				continue;
			if (pid <= 0)
				break;
			if (pid == child)
				return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
}
