// bench-httpd: a fixed-answer HTTP/1.1 server for bench/network. One thread, epoll, keep-alive,
// no fork per request, so that what a throughput run measures is the path to the server (a
// published port vs the container's own address), not the server's per-request cost.
// Every request (headers only; bodies are not expected) gets the same small 200.
// Usage: bench-httpd PORT [CPU]   (CPU: pin to that cpu, so that a load generator pinned to
// another one does not take turns with it on the same core)
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 4096
#define IN_CAP 8192
#define OUT_CAP 16384

static const char BODY[] = "bench-httpd ok\n";

struct conn {
  char in[IN_CAP];
  size_t in_len;
  char out[OUT_CAP];
  size_t out_len;
  int close_after; // the client asked for close: close once out is flushed
};

static struct conn *conns[MAX_FDS];
static char keep_resp[256], close_resp[256];
static size_t keep_len, close_len;

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(conns[fd]);
  conns[fd] = NULL;
}

// Whether the header block [h, end) asks to close the connection after the answer.
static int wants_close(const char *h, const char *end) {
  const char *eol = memchr(h, '\n', (size_t)(end - h));
  if (!eol) return 1;
  int http10 = (eol - h >= 8) && memcmp(eol - (eol[-1] == '\r' ? 9 : 8), "HTTP/1.0", 8) == 0;
  int close_hdr = 0, keep_hdr = 0;
  for (const char *p = eol + 1; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) nl = end;
    size_t n = (size_t)(nl - p);
    if (n > 11 && strncasecmp(p, "connection:", 11) == 0) {
      for (const char *q = p + 11; q + 5 <= nl; q++) {
        if (strncasecmp(q, "close", 5) == 0) close_hdr = 1;
        if (q + 10 <= nl && strncasecmp(q, "keep-alive", 10) == 0) keep_hdr = 1;
      }
    }
    p = nl + 1;
  }
  return close_hdr || (http10 && !keep_hdr);
}

// Writes what is pending; returns -1 when the connection is to be dropped.
static int flush_out(int ep, int fd, struct conn *c) {
  size_t off = 0;
  while (off < c->out_len) {
    ssize_t w = send(fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    off += (size_t)w;
  }
  memmove(c->out, c->out + off, c->out_len - off);
  c->out_len -= off;
  struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
  if (c->out_len == 0 && c->close_after) return -1;
  return 0;
}

// Answers every complete request in the buffer (pipelining included), then reads more, until
// the socket is drained or the answers wait for EPOLLOUT.
static void on_readable(int ep, int fd) {
  struct conn *c = conns[fd];
  for (;;) {
    size_t used = 0;
    while (!c->close_after) {
      char *start = c->in + used;
      char *end = memmem(start, c->in_len - used, "\r\n\r\n", 4);
      if (!end) break;
      end += 4;
      int closing = wants_close(start, end);
      const char *resp = closing ? close_resp : keep_resp;
      size_t len = closing ? close_len : keep_len;
      if (c->out_len + len > OUT_CAP) break; // the client reads slowly
      memcpy(c->out + c->out_len, resp, len);
      c->out_len += len;
      c->close_after = closing;
      used = (size_t)(end - c->in);
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (flush_out(ep, fd, c) < 0) {
      drop(ep, fd);
      return;
    }
    if (c->out_len || c->close_after) return; // resume on EPOLLOUT
    if (c->in_len == IN_CAP) { // headers larger than we serve
      drop(ep, fd);
      return;
    }
    ssize_t r = recv(fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    if (r <= 0) {
      drop(ep, fd);
      return;
    }
    c->in_len += (size_t)r;
  }
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: bench-httpd PORT [CPU]\n");
    return 2;
  }
  char *endp;
  long port = strtol(argv[1], &endp, 10);
  if (*endp || port < 1 || port > 65535) {
    fprintf(stderr, "bench-httpd: bad port %s\n", argv[1]);
    return 2;
  }
  if (argc == 3) {
    long cpu = strtol(argv[2], &endp, 10);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (*endp || cpu < 0 || cpu >= CPU_SETSIZE) {
      fprintf(stderr, "bench-httpd: bad cpu %s\n", argv[2]);
      return 2;
    }
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) perror("bench-httpd: sched_setaffinity (running unpinned)");
  }
  signal(SIGPIPE, SIG_IGN);
  const char *fmt = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n%s";
  keep_len = (size_t)snprintf(keep_resp, sizeof keep_resp, fmt, sizeof BODY - 1, "keep-alive", BODY);
  close_len = (size_t)snprintf(close_resp, sizeof close_resp, fmt, sizeof BODY - 1, "close", BODY);

  int ls = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int v6 = ls >= 0;
  if (!v6) ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) {
    perror("bench-httpd: socket");
    return 1;
  }
  int one = 1, zero = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  }
  if (rc < 0 || listen(ls, 1024) < 0) {
    perror("bench-httpd: bind/listen");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) {
    perror("bench-httpd: epoll");
    return 1;
  }
  fprintf(stderr, "bench-httpd: listening on port %ld\n", port);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("bench-httpd: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        for (;;) {
          int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          if (cfd >= MAX_FDS || !(conns[cfd] = calloc(1, sizeof(struct conn)))) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0) {
            close(cfd);
            free(conns[cfd]);
            conns[cfd] = NULL;
          }
        }
        continue;
      }
      struct conn *c = conns[fd];
      if (!c) continue;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
        drop(ep, fd);
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLOUT)) on_readable(ep, fd);
    }
  }
}
