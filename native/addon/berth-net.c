/*
 * berth_net.node: the kernel side of container networking, in-process and synchronous.
 * Pinned network namespaces, bridges, veth pairs configured inside a namespace, per-netns
 * sysctls and link listing speak rtnetlink directly; nftables rules go through
 * libnftables, dlopen'd at first use so the addon loads on hosts without it.
 *
 * Node's threads must stay in berthd's namespace, so work inside another netns runs on a
 * short-lived pthread that setns()es there, does everything in one go and is joined.
 * Policy (validation, naming, error codes and messages) lives in src/host/netlink.ts; a
 * failure here throws Error{errno, step, object, detail} that netlink.ts rewrites.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, NULL, "berth_net: N-API call failed: " #call);              \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

/* ---------- errors ---------- */

/* What failed: errno, the step (netlink message or syscall), the object it was about and
 * the kernel's extended-ack text when it gave one. */
struct nlerr {
  int err;
  char step[48];
  char object[1024];
  char detail[256];
};

/* Copies with truncation (paths can be long; a cut message beats no message). */
static void copy_str(char *dst, size_t size, const char *src) {
  size_t n = src ? strnlen(src, size - 1) : 0;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

static int fail(struct nlerr *e, int err, const char *step, const char *object, const char *detail) {
  e->err = err ? err : EIO;
  copy_str(e->step, sizeof e->step, step);
  copy_str(e->object, sizeof e->object, object);
  copy_str(e->detail, sizeof e->detail, detail);
  return -1;
}

/* The Error for e (NULL when even that cannot be built). */
static napi_value make_nlerr(napi_env env, const struct nlerr *e) {
  napi_value msg, error, v;
  char text[128];
  snprintf(text, sizeof text, "%s", strerror(e->err));
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, msg, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, e->err, &v) == napi_ok) napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, e->step, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, error, "step", v);
  if (napi_create_string_utf8(env, e->object, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "object", v);
  if (e->detail[0] && napi_create_string_utf8(env, e->detail, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "detail", v);
  return error;
}

static napi_value throw_nlerr(napi_env env, const struct nlerr *e) {
  napi_value error = make_nlerr(env, e);
  if (error) napi_throw(env, error);
  else napi_throw_error(env, NULL, "berth_net: cannot build the error");
  return NULL;
}

/* ---------- N-API arguments ---------- */

static char *get_string(napi_env env, napi_value value, const char *what) {
  size_t len = 0, got = 0;
  char msg[160];
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "berth_net: %s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (!buf) {
    napi_throw_error(env, NULL, "berth_net: out of memory");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, value, buf, len + 1, &got) != napi_ok || strlen(buf) != len) {
    snprintf(msg, sizeof msg, "berth_net: %s must be a string without null bytes", what);
    free(buf);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
  return buf;
}

static int is_nullish(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return 0;
  return type == napi_null || type == napi_undefined;
}

/* A string or null/undefined (→ *out = NULL). Returns 0 on success. */
static int get_optional_string(napi_env env, napi_value value, const char *what, char **out) {
  *out = NULL;
  if (is_nullish(env, value)) return 0;
  *out = get_string(env, value, what);
  return *out ? 0 : -1;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "berth_net: missing arguments");
    return -1;
  }
  return 0;
}

static napi_value prop(napi_env env, napi_value obj, const char *name) {
  napi_value v = NULL;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return NULL;
  return v;
}

static int prop_string(napi_env env, napi_value obj, const char *name, int required, char **out) {
  napi_value v = prop(env, obj, name);
  *out = NULL;
  if (!v) return -1;
  if (!required) return get_optional_string(env, v, name, out);
  *out = get_string(env, v, name);
  return *out ? 0 : -1;
}

/* An optional unsigned number property; 0 when absent. */
static int prop_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v = prop(env, obj, name);
  *out = 0;
  if (!v) return -1;
  if (is_nullish(env, v)) return 0;
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "berth_net: %s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  return 0;
}

struct strlist {
  char **items;
  uint32_t n;
};

static void strlist_free(struct strlist *l) {
  for (uint32_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

/* An array of strings (absent → empty). */
static int get_strlist(napi_env env, napi_value array, const char *what, struct strlist *out) {
  uint32_t len = 0;
  out->items = NULL;
  out->n = 0;
  if (!array || is_nullish(env, array)) return 0;
  if (napi_get_array_length(env, array, &len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "berth_net: %s must be an array", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  out->items = calloc(len ? len : 1, sizeof(char *));
  if (!out->items) {
    napi_throw_error(env, NULL, "berth_net: out of memory");
    return -1;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    if (napi_get_element(env, array, i, &v) != napi_ok || !(out->items[i] = get_string(env, v, what))) {
      strlist_free(out);
      return -1;
    }
    out->n = i + 1;
  }
  return 0;
}

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* ---------- addresses ---------- */

struct cidr {
  int family;
  unsigned char addr[16];
  int prefix;
};

static size_t family_len(int family) { return family == AF_INET ? 4 : 16; }

/* "10.87.0.5/16", "fd00::2/64"; a bare address gets the full prefix. */
static int parse_cidr(const char *text, struct cidr *out) {
  char buf[64];
  const char *slash = strchr(text, '/');
  size_t len = slash ? (size_t)(slash - text) : strlen(text);
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, text, len);
  buf[len] = '\0';
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, buf, out->addr) == 1) out->family = AF_INET;
  else if (inet_pton(AF_INET6, buf, out->addr) == 1) out->family = AF_INET6;
  else return -1;
  int max = out->family == AF_INET ? 32 : 128;
  out->prefix = max;
  if (slash) {
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || p < 0 || p > max) return -1;
    out->prefix = (int)p;
  }
  return 0;
}

static int parse_mac(const char *text, unsigned char mac[6]) {
  unsigned int b[6];
  char tail;
  if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (unsigned char)b[i];
  return 0;
}

/* ---------- netlink requests ---------- */

#define REQ_SIZE 4096
#define RECV_SIZE 65536

struct nlreq {
  union {
    struct nlmsghdr h;
    char buf[REQ_SIZE];
  } u;
  int overflow;
};

static void req_init(struct nlreq *r, uint16_t type, uint16_t flags, const void *hdr, size_t hdrlen) {
  memset(&r->u.h, 0, NLMSG_SPACE(hdrlen));
  r->overflow = 0;
  r->u.h.nlmsg_len = NLMSG_LENGTH(hdrlen);
  r->u.h.nlmsg_type = type;
  r->u.h.nlmsg_flags = NLM_F_REQUEST | flags;
  memcpy(NLMSG_DATA(&r->u.h), hdr, hdrlen);
}

static struct rtattr *req_attr(struct nlreq *r, uint16_t type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(r->u.h.nlmsg_len);
  size_t need = RTA_LENGTH(len);
  if (r->overflow || off + RTA_ALIGN(need) > REQ_SIZE) {
    r->overflow = 1;
    return NULL;
  }
  struct rtattr *a = (struct rtattr *)(r->u.buf + off);
  a->rta_type = type;
  a->rta_len = (unsigned short)need;
  if (len) memcpy(RTA_DATA(a), data, len);
  memset((char *)a + need, 0, RTA_ALIGN(need) - need);
  r->u.h.nlmsg_len = (uint32_t)(off + RTA_ALIGN(need));
  return a;
}

static void req_str(struct nlreq *r, uint16_t type, const char *s) { req_attr(r, type, s, strlen(s) + 1); }
static void req_u32(struct nlreq *r, uint16_t type, uint32_t v) { req_attr(r, type, &v, sizeof v); }

static void req_nest_end(struct nlreq *r, struct rtattr *nest) {
  if (nest && !r->overflow) nest->rta_len = (unsigned short)(r->u.buf + r->u.h.nlmsg_len - (char *)nest);
}

struct nlsock {
  int fd;
  uint32_t seq;
  char *rbuf;
};

static void nl_close(struct nlsock *s) {
  if (s->fd >= 0) close(s->fd);
  free(s->rbuf);
  s->fd = -1;
  s->rbuf = NULL;
}

/* A NETLINK_ROUTE socket in the calling thread's network namespace (it stays bound to it). */
static int nl_open(struct nlsock *s, struct nlerr *e) {
  int one = 1;
  s->seq = 0;
  s->rbuf = malloc(RECV_SIZE);
  s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s->fd < 0 || !s->rbuf) {
    int err = s->fd < 0 ? errno : ENOMEM;
    nl_close(s);
    return fail(e, err, "socket", "NETLINK_ROUTE", NULL);
  }
  /* Kernel error strings make errors readable; a capped ACK keeps them small. */
  setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(s->fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    nl_close(s);
    return fail(e, err, "bind", "NETLINK_ROUTE", NULL);
  }
  return 0;
}

static void extack_message(const struct nlmsghdr *h, char *out, size_t outlen) {
  const struct nlmsgerr *err = NLMSG_DATA(h);
  out[0] = '\0';
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  size_t off = sizeof *err;
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - NLMSG_HDRLEN;
  if (NLMSG_LENGTH(off) > h->nlmsg_len) return;
  const struct rtattr *a = (const struct rtattr *)((const char *)err + NLMSG_ALIGN(off));
  int len = (int)(h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(off)));
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == NLMSGERR_ATTR_MSG && RTA_PAYLOAD(a) > 0) {
      snprintf(out, outlen, "%.*s", (int)RTA_PAYLOAD(a), (const char *)RTA_DATA(a));
      size_t n = strlen(out);
      while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0')) out[--n] = '\0';
    }
  }
}

typedef void (*nl_cb)(const struct nlmsghdr *h, void *ctx);

/* Sends one request and reads until its ACK, error or end of dump; every other answer to
 * it goes to cb. */
static int nl_exchange(struct nlsock *s, struct nlreq *r, nl_cb cb, void *ctx, struct nlerr *e, const char *step,
                       const char *object) {
  if (r->overflow) return fail(e, EMSGSIZE, step, object, "request does not fit in one message");
  r->u.h.nlmsg_seq = ++s->seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(s->fd, r->u.buf, r->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail(e, errno, step, object, "sendto");
  for (;;) {
    struct iovec iov = {.iov_base = s->rbuf, .iov_len = RECV_SIZE};
    struct sockaddr_nl from;
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    do n = recvmsg(s->fd, &mh, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail(e, errno, step, object, "recvmsg");
    if (mh.msg_flags & MSG_TRUNC) return fail(e, EMSGSIZE, step, object, "answer truncated");
    int len = (int)n;
    for (const struct nlmsghdr *h = (const struct nlmsghdr *)s->rbuf; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != s->seq || from.nl_pid != 0) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *err = NLMSG_DATA(h);
        if (err->error == 0) return 0;
        char detail[256];
        extack_message(h, detail, sizeof detail);
        return fail(e, -err->error, step, object, detail);
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int status = *(const int *)NLMSG_DATA(h);
          if (status < 0) return fail(e, -status, step, object, "dump interrupted");
        }
        return 0;
      }
      if (cb) cb(h, ctx);
    }
  }
}

/* ---------- links and addresses ---------- */

struct link {
  int index;
  char name[IFNAMSIZ];
  char kind[32];
  int master;
  unsigned char mac[32];
  int maclen;
  uint32_t mtu;
  uint32_t flags;
};

struct addr {
  int index;
  int family;
  int prefix;
  unsigned char a[16];
};

struct linklist {
  struct link *links;
  size_t nlinks, caplinks;
  struct addr *addrs;
  size_t naddrs, capaddrs;
  int oom;
};

static void parse_link(const struct nlmsghdr *h, struct link *out) {
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  memset(out, 0, sizeof *out);
  out->index = ifi->ifi_index;
  out->flags = ifi->ifi_flags;
  int len = (int)IFLA_PAYLOAD(h);
  for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
    case IFLA_IFNAME:
      snprintf(out->name, sizeof out->name, "%.*s", (int)RTA_PAYLOAD(a), (const char *)RTA_DATA(a));
      break;
    case IFLA_MTU:
      if (RTA_PAYLOAD(a) >= 4) memcpy(&out->mtu, RTA_DATA(a), 4);
      break;
    case IFLA_MASTER:
      if (RTA_PAYLOAD(a) >= 4) memcpy(&out->master, RTA_DATA(a), 4);
      break;
    case IFLA_ADDRESS:
      out->maclen = (int)(RTA_PAYLOAD(a) < sizeof out->mac ? RTA_PAYLOAD(a) : sizeof out->mac);
      memcpy(out->mac, RTA_DATA(a), (size_t)out->maclen);
      break;
    case IFLA_LINKINFO: {
      int nlen = (int)RTA_PAYLOAD(a);
      for (const struct rtattr *n = RTA_DATA(a); RTA_OK(n, nlen); n = RTA_NEXT(n, nlen)) {
        if (n->rta_type == IFLA_INFO_KIND)
          snprintf(out->kind, sizeof out->kind, "%.*s", (int)RTA_PAYLOAD(n), (const char *)RTA_DATA(n));
      }
      break;
    }
    }
  }
}

static void collect_link(const struct nlmsghdr *h, void *ctx) {
  struct linklist *l = ctx;
  if (h->nlmsg_type != RTM_NEWLINK || l->oom) return;
  if (l->nlinks == l->caplinks) {
    size_t cap = l->caplinks ? l->caplinks * 2 : 16;
    struct link *p = realloc(l->links, cap * sizeof *p);
    if (!p) {
      l->oom = 1;
      return;
    }
    l->links = p;
    l->caplinks = cap;
  }
  parse_link(h, &l->links[l->nlinks++]);
}

static void collect_addr(const struct nlmsghdr *h, void *ctx) {
  struct linklist *l = ctx;
  if (h->nlmsg_type != RTM_NEWADDR || l->oom) return;
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return;
  const struct rtattr *local = NULL, *address = NULL;
  int len = (int)IFA_PAYLOAD(h);
  for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFA_LOCAL) local = a;
    else if (a->rta_type == IFA_ADDRESS) address = a;
  }
  const struct rtattr *use = local ? local : address;
  if (!use || RTA_PAYLOAD(use) < family_len(ifa->ifa_family)) return;
  if (l->naddrs == l->capaddrs) {
    size_t cap = l->capaddrs ? l->capaddrs * 2 : 16;
    struct addr *p = realloc(l->addrs, cap * sizeof *p);
    if (!p) {
      l->oom = 1;
      return;
    }
    l->addrs = p;
    l->capaddrs = cap;
  }
  struct addr *out = &l->addrs[l->naddrs++];
  out->index = (int)ifa->ifa_index;
  out->family = ifa->ifa_family;
  out->prefix = ifa->ifa_prefixlen;
  memcpy(out->a, RTA_DATA(use), family_len(ifa->ifa_family));
}

static void linklist_free(struct linklist *l) {
  free(l->links);
  free(l->addrs);
  memset(l, 0, sizeof *l);
}

static int dump_links(struct nlsock *s, struct linklist *l, struct nlerr *e) {
  struct nlreq r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  req_init(&r, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof ifi);
  req_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (nl_exchange(s, &r, collect_link, l, e, "RTM_GETLINK", "dump")) return -1;
  struct ifaddrmsg ifa = {.ifa_family = AF_UNSPEC};
  req_init(&r, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
  if (nl_exchange(s, &r, collect_addr, l, e, "RTM_GETADDR", "dump")) return -1;
  if (l->oom) return fail(e, ENOMEM, "RTM_GETLINK", "dump", NULL);
  return 0;
}

struct found_link {
  struct link link;
  int found;
};

static void take_link(const struct nlmsghdr *h, void *ctx) {
  struct found_link *f = ctx;
  if (h->nlmsg_type != RTM_NEWLINK || f->found) return;
  parse_link(h, &f->link);
  f->found = 1;
}

/* The link called name, or -1 with e set (ENODEV when there is none). */
static int link_by_name(struct nlsock *s, const char *name, struct link *out, struct nlerr *e) {
  struct nlreq r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct found_link f = {.found = 0};
  req_init(&r, RTM_GETLINK, NLM_F_ACK, &ifi, sizeof ifi);
  req_str(&r, IFLA_IFNAME, name);
  req_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (nl_exchange(s, &r, take_link, &f, e, "RTM_GETLINK", name)) return -1;
  if (!f.found) return fail(e, ENODEV, "RTM_GETLINK", name, NULL);
  *out = f.link;
  return 0;
}

/* RTM_NEWLINK on an existing link: up, and MTU/MAC when given. */
static int link_set(struct nlsock *s, const struct link *l, uint32_t mtu, const unsigned char *mac, struct nlerr *e) {
  struct nlreq r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = l->index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  req_init(&r, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof ifi);
  if (mtu) req_u32(&r, IFLA_MTU, mtu);
  if (mac) req_attr(&r, IFLA_ADDRESS, mac, 6);
  return nl_exchange(s, &r, NULL, NULL, e, "RTM_NEWLINK", l->name);
}

static int link_delete(struct nlsock *s, const char *name, struct nlerr *e) {
  struct nlreq r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  req_init(&r, RTM_DELLINK, NLM_F_ACK, &ifi, sizeof ifi);
  req_str(&r, IFLA_IFNAME, name);
  return nl_exchange(s, &r, NULL, NULL, e, "RTM_DELLINK", name);
}

/* Adds an address; "already there" is success when tolerate_exists. IPv6 gets no DAD so
 * it is usable at once. */
static int addr_add(struct nlsock *s, int index, const char *text, int tolerate_exists, struct nlerr *e) {
  struct cidr c;
  if (parse_cidr(text, &c)) return fail(e, EINVAL, "RTM_NEWADDR", text, "not an address/prefix");
  struct nlreq r;
  struct ifaddrmsg ifa = {.ifa_family = (unsigned char)c.family,
                          .ifa_prefixlen = (unsigned char)c.prefix,
                          .ifa_flags = c.family == AF_INET6 ? IFA_F_NODAD : 0,
                          .ifa_scope = RT_SCOPE_UNIVERSE,
                          .ifa_index = (uint32_t)index};
  req_init(&r, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
  size_t alen = family_len(c.family);
  req_attr(&r, IFA_LOCAL, c.addr, alen);
  req_attr(&r, IFA_ADDRESS, c.addr, alen);
  if (c.family == AF_INET6) req_u32(&r, IFA_FLAGS, IFA_F_NODAD);
  if (c.family == AF_INET && c.prefix < 31) {
    uint32_t a;
    memcpy(&a, c.addr, 4);
    uint32_t host = c.prefix == 0 ? 0xffffffffu : (0xffffffffu >> c.prefix);
    a = htonl(ntohl(a) | host);
    req_attr(&r, IFA_BROADCAST, &a, 4);
  }
  if (nl_exchange(s, &r, NULL, NULL, e, "RTM_NEWADDR", text)) {
    if (tolerate_exists && e->err == EEXIST) return 0;
    return -1;
  }
  return 0;
}

/* A unicast route in the main table: dst NULL is the default route. No gateway → scope link. */
static int route_add(struct nlsock *s, int oif, const char *dst, const char *via, struct nlerr *e) {
  struct cidr d = {.family = 0}, g = {.family = 0};
  char object[192];
  snprintf(object, sizeof object, "%s%s%s", dst ? dst : "default", via ? " via " : "", via ? via : "");
  if (dst && parse_cidr(dst, &d)) return fail(e, EINVAL, "RTM_NEWROUTE", object, "bad destination");
  if (via && parse_cidr(via, &g)) return fail(e, EINVAL, "RTM_NEWROUTE", object, "bad gateway");
  int family = dst ? d.family : g.family;
  if (!family || (via && dst && g.family != d.family)) return fail(e, EINVAL, "RTM_NEWROUTE", object, "mixed address families");
  struct rtmsg rtm = {.rtm_family = (unsigned char)family,
                      .rtm_dst_len = (unsigned char)(dst ? d.prefix : 0),
                      .rtm_table = RT_TABLE_MAIN,
                      .rtm_protocol = RTPROT_BOOT,
                      .rtm_scope = via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
                      .rtm_type = RTN_UNICAST};
  struct nlreq r;
  req_init(&r, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof rtm);
  if (dst && d.prefix > 0) req_attr(&r, RTA_DST, d.addr, family_len(family));
  if (via) req_attr(&r, RTA_GATEWAY, g.addr, family_len(family));
  req_u32(&r, RTA_OIF, (uint32_t)oif);
  return nl_exchange(s, &r, NULL, NULL, e, "RTM_NEWROUTE", object);
}

/* ---------- sysctl ---------- */

static int sysctl_write(const char *rel, const char *value, struct nlerr *e) {
  char path[512];
  snprintf(path, sizeof path, "/proc/sys/%s", rel);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(e, errno, "open", path, NULL);
  size_t len = strlen(value);
  ssize_t n;
  do n = write(fd, value, len);
  while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : ((size_t)n != len ? EIO : 0);
  close(fd);
  if (err) return fail(e, err, "write", path, NULL);
  return 0;
}

/* DAD would leave the address tentative (unusable) for a second or more. */
static int no_dad(const char *ifname, struct nlerr *e) {
  char rel[128];
  snprintf(rel, sizeof rel, "net/ipv6/conf/%s/accept_dad", ifname);
  return sysctl_write(rel, "0", e);
}

/* ---------- running inside a network namespace ---------- */

typedef int (*ns_fn)(void *ctx, struct nlerr *e);

struct ns_job {
  const char *path;
  int unshare_new;
  ns_fn fn;
  void *ctx;
  struct nlerr *e;
  int rc;
};

static void *ns_thread(void *arg) {
  struct ns_job *job = arg;
  if (job->unshare_new) {
    if (unshare(CLONE_NEWNET) < 0) {
      job->rc = fail(job->e, errno, "unshare", "CLONE_NEWNET", NULL);
      return NULL;
    }
  } else {
    int fd = open(job->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      job->rc = fail(job->e, errno, "open", job->path, NULL);
      return NULL;
    }
    int rc = setns(fd, CLONE_NEWNET);
    int err = errno;
    close(fd);
    if (rc < 0) {
      job->rc = fail(job->e, err, "setns", job->path, NULL);
      return NULL;
    }
  }
  job->rc = job->fn(job->ctx, job->e);
  return NULL;
}

/* Runs fn in the netns at path (NULL: here, on the calling thread), or in a new netns. The
 * thread dies with its namespace membership, so Node's threads never move. */
static int in_netns(const char *path, int unshare_new, ns_fn fn, void *ctx, struct nlerr *e) {
  if (!path && !unshare_new) return fn(ctx, e);
  struct ns_job job = {.path = path, .unshare_new = unshare_new, .fn = fn, .ctx = ctx, .e = e, .rc = -1};
  pthread_attr_t attr;
  pthread_t tid;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int err = pthread_create(&tid, &attr, ns_thread, &job);
  pthread_attr_destroy(&attr);
  if (err) return fail(e, err, "pthread_create", path ? path : "new netns", NULL);
  pthread_join(tid, NULL);
  return job.rc;
}

/* ---------- createNetns / removeNetns / makeShared ---------- */

static int is_nsfs(const char *path) {
  struct statfs st;
  return statfs(path, &st) == 0 && (unsigned long)st.f_type == (unsigned long)NSFS_MAGIC;
}

struct create_ctx {
  const char *path;
};

static int create_in_new_netns(void *arg, struct nlerr *e) {
  struct create_ctx *c = arg;
  struct nlsock s;
  struct nlreq r;
  if (nl_open(&s, e)) return -1;
  /* lo is always index 1 in a fresh namespace. */
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 1, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  req_init(&r, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof ifi);
  int rc = nl_exchange(&s, &r, NULL, NULL, e, "RTM_NEWLINK", "lo");
  nl_close(&s);
  if (rc) return -1;
  if (mount("/proc/thread-self/ns/net", c->path, "none", MS_BIND, NULL) < 0)
    return fail(e, errno, "mount", c->path, "bind of /proc/thread-self/ns/net");
  return 0;
}

/* createNetns(path) */
static napi_value js_create_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct nlerr e = {0};
  if (get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  napi_value ret = NULL;
  int created = 0;
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd >= 0) {
    created = 1;
    close(fd);
  } else if (errno != EEXIST) {
    fail(&e, errno, "open", path, "creating the pin file");
    goto out;
  } else if (is_nsfs(path)) {
    fail(&e, EEXIST, "mount", path, "a namespace is already pinned there");
    goto out;
  }
  struct create_ctx c = {.path = path};
  if (in_netns(NULL, 1, create_in_new_netns, &c, &e)) {
    if (created) unlink(path);
    goto out;
  }
  ret = undefined(env);
out:
  if (!ret) throw_nlerr(env, &e);
  free(path);
  return ret;
}

/* removeNetns(path): every stacked pin unmounted (lazily), then the file removed. */
static napi_value js_remove_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct nlerr e = {0};
  if (get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  napi_value ret = NULL;
  for (int i = 0; i < 16 && is_nsfs(path); i++) {
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL) {
      fail(&e, errno, "umount2", path, NULL);
      goto out;
    }
  }
  if (unlink(path) < 0 && errno != ENOENT) {
    fail(&e, errno, "unlink", path, NULL);
    goto out;
  }
  ret = undefined(env);
out:
  if (!ret) throw_nlerr(env, &e);
  free(path);
  return ret;
}

/* makeShared(dir): a shared mount point with a peer group of its own, as `ip netns` makes
 * /run/netns, so unmounting a pin propagates to the copies other mount namespaces made of
 * it instead of keeping the namespace alive there. */
static napi_value js_make_shared(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct nlerr e = {0};
  if (get_args(env, info, 1, argv)) return NULL;
  char *dir = get_string(env, argv[0], "dir");
  if (!dir) return NULL;
  napi_value ret = NULL;
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
    if (errno != EINVAL) {
      fail(&e, errno, "mount", dir, "MS_SHARED");
      goto out;
    }
    if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) {
      fail(&e, errno, "mount", dir, "bind onto itself");
      goto out;
    }
    /* A bind of a shared mount joins its peer group, and every pin would then also be
     * propagated (hidden) into the parent mount: private first, so shared makes a new group. */
    if (mount("", dir, "none", MS_PRIVATE, NULL) < 0 || mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
      fail(&e, errno, "mount", dir, "MS_SHARED");
      umount2(dir, MNT_DETACH);
      goto out;
    }
  }
  ret = undefined(env);
out:
  if (!ret) throw_nlerr(env, &e);
  free(dir);
  return ret;
}

/* ---------- ensureBridge ---------- */

struct bridge_opts {
  char *name;
  uint32_t mtu;
  char *mac;
  char *create_mac;
  struct strlist addresses;
};

static int has_ipv6(const struct strlist *l) {
  for (uint32_t i = 0; i < l->n; i++)
    if (strchr(l->items[i], ':')) return 1;
  return 0;
}

static int ensure_bridge(struct bridge_opts *o, struct nlerr *e) {
  struct nlsock s;
  struct link l;
  unsigned char mac[6];
  int created = 0, rc = -1;
  if (nl_open(&s, e)) return -1;
  if (link_by_name(&s, o->name, &l, e)) {
    if (e->err != ENODEV) goto out;
    struct nlreq r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    req_init(&r, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    req_str(&r, IFLA_IFNAME, o->name);
    if (o->mtu) req_u32(&r, IFLA_MTU, o->mtu);
    /* A bridge without a set MAC takes its lowest port's, changing under the containers'
     * ARP caches whenever ports come and go. */
    const char *m = o->mac ? o->mac : o->create_mac;
    if (m) {
      if (parse_mac(m, mac)) {
        fail(e, EINVAL, "RTM_NEWLINK", o->name, "bad MAC address");
        goto out;
      }
      req_attr(&r, IFLA_ADDRESS, mac, 6);
    }
    struct rtattr *info = req_attr(&r, IFLA_LINKINFO, NULL, 0);
    req_str(&r, IFLA_INFO_KIND, "bridge");
    req_nest_end(&r, info);
    if (nl_exchange(&s, &r, NULL, NULL, e, "RTM_NEWLINK", o->name)) {
      if (e->err != EEXIST) goto out;
    } else {
      created = 1;
    }
    if (link_by_name(&s, o->name, &l, e)) goto undo;
  }
  if (strcmp(l.kind, "bridge") != 0) {
    char detail[96];
    snprintf(detail, sizeof detail, "the link exists and is %s%s, not a bridge", l.kind[0] ? "a " : "a device without kind",
             l.kind);
    fail(e, EEXIST, "RTM_GETLINK", o->name, detail);
    goto out;
  }
  if (has_ipv6(&o->addresses) && no_dad(o->name, e)) goto undo;
  for (uint32_t i = 0; i < o->addresses.n; i++)
    if (addr_add(&s, l.index, o->addresses.items[i], 1, e)) goto undo;
  if (o->mac && parse_mac(o->mac, mac)) {
    fail(e, EINVAL, "RTM_NEWLINK", o->name, "bad MAC address");
    goto undo;
  }
  if (link_set(&s, &l, o->mtu && o->mtu != l.mtu ? o->mtu : 0, o->mac ? mac : NULL, e)) goto undo;
  rc = 0;
  goto out;
undo:
  if (created) {
    struct nlerr ignored;
    link_delete(&s, o->name, &ignored);
  }
out:
  nl_close(&s);
  return rc;
}

/* ensureBridge({name, mtu?, mac?, createMac?, addresses}) */
static napi_value js_ensure_bridge(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct bridge_opts o = {0};
  struct nlerr e = {0};
  napi_value ret = NULL;
  if (get_args(env, info, 1, argv)) return NULL;
  if (prop_string(env, argv[0], "name", 1, &o.name) || prop_u32(env, argv[0], "mtu", &o.mtu) ||
      prop_string(env, argv[0], "mac", 0, &o.mac) || prop_string(env, argv[0], "createMac", 0, &o.create_mac) ||
      get_strlist(env, prop(env, argv[0], "addresses"), "addresses", &o.addresses))
    goto out;
  if (ensure_bridge(&o, &e)) throw_nlerr(env, &e);
  else ret = undefined(env);
out:
  free(o.name);
  free(o.mac);
  free(o.create_mac);
  strlist_free(&o.addresses);
  return ret;
}

/* ---------- addVeth ---------- */

struct veth_opts {
  char *netns;
  char *host;
  char *peer;
  char *bridge;
  uint32_t mtu;
  char *mac;
  struct strlist addresses;
  char *gateway4;
  char *gateway6;
  struct strlist route_dst;
  struct strlist route_via; /* "" = none */
};

/* The container side, run inside its netns: addresses, up, routes. */
static int veth_configure_peer(void *arg, struct nlerr *e) {
  struct veth_opts *o = arg;
  struct nlsock s;
  struct link l;
  int rc = -1;
  if (nl_open(&s, e)) return -1;
  if (link_by_name(&s, o->peer, &l, e)) goto out;
  if ((has_ipv6(&o->addresses) || o->gateway6) && no_dad(o->peer, e)) goto out;
  for (uint32_t i = 0; i < o->addresses.n; i++)
    if (addr_add(&s, l.index, o->addresses.items[i], 0, e)) goto out;
  if (link_set(&s, &l, 0, NULL, e)) goto out;
  if (o->gateway4 && route_add(&s, l.index, NULL, o->gateway4, e)) goto out;
  if (o->gateway6 && route_add(&s, l.index, NULL, o->gateway6, e)) goto out;
  for (uint32_t i = 0; i < o->route_dst.n; i++) {
    const char *via = o->route_via.items[i][0] ? o->route_via.items[i] : NULL;
    if (route_add(&s, l.index, o->route_dst.items[i], via, e)) goto out;
  }
  rc = 0;
out:
  nl_close(&s);
  return rc;
}

static int add_veth(struct veth_opts *o, struct nlerr *e) {
  struct nlsock s;
  struct link br;
  unsigned char mac[6];
  int nsfd = -1, rc = -1;
  if (o->mac && parse_mac(o->mac, mac)) return fail(e, EINVAL, "RTM_NEWLINK", o->peer, "bad MAC address");
  if (nl_open(&s, e)) return -1;
  if (link_by_name(&s, o->bridge, &br, e)) goto out;
  nsfd = open(o->netns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    fail(e, errno, "open", o->netns, NULL);
    goto out;
  }
  /* Without an MTU of its own the pair takes the bridge's, so enslaving does not lower it. */
  uint32_t mtu = o->mtu ? o->mtu : br.mtu;
  struct nlreq r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  req_init(&r, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  req_str(&r, IFLA_IFNAME, o->host);
  if (mtu) req_u32(&r, IFLA_MTU, mtu);
  req_u32(&r, IFLA_MASTER, (uint32_t)br.index);
  struct rtattr *linkinfo = req_attr(&r, IFLA_LINKINFO, NULL, 0);
  req_str(&r, IFLA_INFO_KIND, "veth");
  struct rtattr *data = req_attr(&r, IFLA_INFO_DATA, NULL, 0);
  struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
  struct rtattr *peer = req_attr(&r, VETH_INFO_PEER, &peer_ifi, sizeof peer_ifi);
  req_str(&r, IFLA_IFNAME, o->peer);
  req_u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  if (mtu) req_u32(&r, IFLA_MTU, mtu);
  if (o->mac) req_attr(&r, IFLA_ADDRESS, mac, 6);
  req_nest_end(&r, peer);
  req_nest_end(&r, data);
  req_nest_end(&r, linkinfo);
  char object[96];
  snprintf(object, sizeof object, "veth %s/%s", o->host, o->peer);
  if (nl_exchange(&s, &r, NULL, NULL, e, "RTM_NEWLINK", object)) goto out;
  if (in_netns(o->netns, 0, veth_configure_peer, o, e)) {
    struct nlerr ignored;
    link_delete(&s, o->host, &ignored);
    goto out;
  }
  rc = 0;
out:
  if (nsfd >= 0) close(nsfd);
  nl_close(&s);
  return rc;
}

/* addVeth({netnsPath, hostName, peerName, bridge, mtu?, mac?, addresses, gateway4?, gateway6?,
 *          routeDst: string[], routeVia: string[]}) */
static napi_value js_add_veth(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct veth_opts o = {0};
  struct nlerr e = {0};
  napi_value ret = NULL;
  if (get_args(env, info, 1, argv)) return NULL;
  napi_value obj = argv[0];
  if (prop_string(env, obj, "netnsPath", 1, &o.netns) || prop_string(env, obj, "hostName", 1, &o.host) ||
      prop_string(env, obj, "peerName", 1, &o.peer) || prop_string(env, obj, "bridge", 1, &o.bridge) ||
      prop_u32(env, obj, "mtu", &o.mtu) || prop_string(env, obj, "mac", 0, &o.mac) ||
      get_strlist(env, prop(env, obj, "addresses"), "addresses", &o.addresses) ||
      prop_string(env, obj, "gateway4", 0, &o.gateway4) || prop_string(env, obj, "gateway6", 0, &o.gateway6) ||
      get_strlist(env, prop(env, obj, "routeDst"), "routeDst", &o.route_dst) ||
      get_strlist(env, prop(env, obj, "routeVia"), "routeVia", &o.route_via))
    goto out;
  if (o.route_dst.n != o.route_via.n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "berth_net: routeDst and routeVia differ in length");
    goto out;
  }
  if (add_veth(&o, &e)) throw_nlerr(env, &e);
  else ret = undefined(env);
out:
  free(o.netns);
  free(o.host);
  free(o.peer);
  free(o.bridge);
  free(o.mac);
  free(o.gateway4);
  free(o.gateway6);
  strlist_free(&o.addresses);
  strlist_free(&o.route_dst);
  strlist_free(&o.route_via);
  return ret;
}

/* ---------- deleteLink / listLinks / writeSysctl ---------- */

static int delete_link_here(void *arg, struct nlerr *e) {
  struct nlsock s;
  if (nl_open(&s, e)) return -1;
  int rc = link_delete(&s, arg, e);
  nl_close(&s);
  if (rc && e->err == ENODEV) rc = 0;
  return rc;
}

/* deleteLink(name, netnsPath|null): absent link or namespace is not an error. */
static napi_value js_delete_link(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct nlerr e = {0};
  char *name = NULL, *ns = NULL;
  napi_value ret = NULL;
  if (get_args(env, info, 2, argv)) return NULL;
  if (!(name = get_string(env, argv[0], "name")) || get_optional_string(env, argv[1], "netnsPath", &ns)) goto out;
  if (in_netns(ns, 0, delete_link_here, name, &e) && !(ns && e.err == ENOENT && strcmp(e.step, "open") == 0))
    throw_nlerr(env, &e);
  else
    ret = undefined(env);
out:
  free(name);
  free(ns);
  return ret;
}

/* deleteLinkAsync(name, netnsPath|null) → Promise: the same on a libuv pool thread, because
 * unregistering a device waits for RCU grace periods (tens of ms) and must not stall Node. */
struct async_delete {
  napi_async_work work;
  napi_deferred deferred;
  char *name;
  char *ns;
  struct nlerr e;
  int rc;
};

static void async_delete_execute(napi_env env, void *data) {
  (void)env;
  struct async_delete *d = data;
  d->rc = in_netns(d->ns, 0, delete_link_here, d->name, &d->e);
  if (d->rc && d->ns && d->e.err == ENOENT && strcmp(d->e.step, "open") == 0) d->rc = 0;
}

static void async_delete_complete(napi_env env, napi_status status, void *data) {
  struct async_delete *d = data;
  if (status != napi_ok && !d->rc) {
    fail(&d->e, ECANCELED, "RTM_DELLINK", d->name, "the work was cancelled");
    d->rc = -1;
  }
  if (d->rc) {
    napi_value error = make_nlerr(env, &d->e);
    if (!error) napi_create_string_utf8(env, "berth_net: cannot build the error", NAPI_AUTO_LENGTH, &error);
    napi_reject_deferred(env, d->deferred, error);
  } else {
    napi_resolve_deferred(env, d->deferred, undefined(env));
  }
  napi_delete_async_work(env, d->work);
  free(d->name);
  free(d->ns);
  free(d);
}

static napi_value js_delete_link_async(napi_env env, napi_callback_info info) {
  napi_value argv[2], promise, resource;
  if (get_args(env, info, 2, argv)) return NULL;
  struct async_delete *d = calloc(1, sizeof *d);
  if (!d) {
    napi_throw_error(env, NULL, "berth_net: out of memory");
    return NULL;
  }
  if (!(d->name = get_string(env, argv[0], "name")) || get_optional_string(env, argv[1], "netnsPath", &d->ns)) goto fail;
  if (napi_create_string_utf8(env, "berth_net.deleteLink", NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_promise(env, &d->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, resource, async_delete_execute, async_delete_complete, d, &d->work) != napi_ok)
    goto fail;
  if (napi_queue_async_work(env, d->work) != napi_ok) {
    napi_delete_async_work(env, d->work);
    goto fail;
  }
  return promise;
fail:
  free(d->name);
  free(d->ns);
  free(d);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) napi_throw_error(env, NULL, "berth_net: cannot queue the deletion");
  return NULL;
}

static int list_links_here(void *arg, struct nlerr *e) {
  struct nlsock s;
  if (nl_open(&s, e)) return -1;
  int rc = dump_links(&s, arg, e);
  nl_close(&s);
  return rc;
}

static int set_str(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  return napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) != napi_ok ||
         napi_set_named_property(env, obj, key, v) != napi_ok;
}

static int set_num(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) != napi_ok || napi_set_named_property(env, obj, key, v) != napi_ok;
}

static napi_value link_to_js(napi_env env, const struct linklist *l, const struct link *k) {
  napi_value obj, v, addrs;
  char mac[3 * sizeof k->mac + 1] = "";
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  size_t pos = 0;
  for (int i = 0; i < k->maclen && pos + 4 < sizeof mac; i++)
    pos += (size_t)snprintf(mac + pos, sizeof mac - pos, i ? ":%02x" : "%02x", k->mac[i]);
  mac[pos] = '\0';
  if (set_str(env, obj, "name", k->name) || set_num(env, obj, "index", k->index) || set_str(env, obj, "kind", k->kind) ||
      set_str(env, obj, "mac", mac) || set_num(env, obj, "mtu", k->mtu))
    return NULL;
  if (napi_get_boolean(env, (k->flags & IFF_UP) != 0, &v) != napi_ok || napi_set_named_property(env, obj, "up", v) != napi_ok)
    return NULL;
  if (k->master) {
    for (size_t i = 0; i < l->nlinks; i++)
      if (l->links[i].index == k->master && set_str(env, obj, "master", l->links[i].name)) return NULL;
  }
  if (napi_create_array(env, &addrs) != napi_ok) return NULL;
  uint32_t n = 0;
  for (size_t i = 0; i < l->naddrs; i++) {
    const struct addr *a = &l->addrs[i];
    if (a->index != k->index) continue;
    char text[INET6_ADDRSTRLEN + 8];
    if (!inet_ntop(a->family, a->a, text, INET6_ADDRSTRLEN)) continue;
    snprintf(text + strlen(text), 8, "/%d", a->prefix);
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_element(env, addrs, n++, v) != napi_ok)
      return NULL;
  }
  if (napi_set_named_property(env, obj, "addresses", addrs) != napi_ok) return NULL;
  return obj;
}

/* listLinks(netnsPath|null) → LinkInfo[] */
static napi_value js_list_links(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct nlerr e = {0};
  struct linklist l = {0};
  char *ns = NULL;
  napi_value ret = NULL;
  if (get_args(env, info, 1, argv) || get_optional_string(env, argv[0], "netnsPath", &ns)) return NULL;
  if (in_netns(ns, 0, list_links_here, &l, &e)) {
    throw_nlerr(env, &e);
    goto out;
  }
  napi_value array;
  if (napi_create_array(env, &array) != napi_ok) goto out;
  for (size_t i = 0; i < l.nlinks; i++) {
    napi_value obj = link_to_js(env, &l, &l.links[i]);
    if (!obj || napi_set_element(env, array, (uint32_t)i, obj) != napi_ok) {
      napi_throw_error(env, NULL, "berth_net: cannot build the link list");
      goto out;
    }
  }
  ret = array;
out:
  linklist_free(&l);
  free(ns);
  return ret;
}

struct sysctl_ctx {
  const char *rel;
  const char *value;
};

static int sysctl_here(void *arg, struct nlerr *e) {
  struct sysctl_ctx *c = arg;
  return sysctl_write(c->rel, c->value, e);
}

/* writeSysctl(relativePath, value, netnsPath|null): /proc/sys/net is per network namespace,
 * resolved for the thread that opens it. */
static napi_value js_write_sysctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct nlerr e = {0};
  char *rel = NULL, *value = NULL, *ns = NULL;
  napi_value ret = NULL;
  if (get_args(env, info, 3, argv)) return NULL;
  if (!(rel = get_string(env, argv[0], "key")) || !(value = get_string(env, argv[1], "value")) ||
      get_optional_string(env, argv[2], "netnsPath", &ns))
    goto out;
  struct sysctl_ctx c = {.rel = rel, .value = value};
  if (in_netns(ns, 0, sysctl_here, &c, &e)) throw_nlerr(env, &e);
  else ret = undefined(env);
out:
  free(rel);
  free(value);
  free(ns);
  return ret;
}

/* ---------- nftables through libnftables ---------- */

struct nft_ctx;
static struct {
  void *handle;
  struct nft_ctx *(*ctx_new)(uint32_t);
  void (*ctx_free)(struct nft_ctx *);
  int (*buffer_output)(struct nft_ctx *);
  int (*buffer_error)(struct nft_ctx *);
  const char *(*get_output)(struct nft_ctx *);
  const char *(*get_error)(struct nft_ctx *);
  int (*run)(struct nft_ctx *, const char *);
  void (*set_output_flags)(struct nft_ctx *, unsigned int);
  char why[256];
} nft;

static int nft_load(void) {
  if (nft.handle) return 0;
  void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *msg = dlerror();
    snprintf(nft.why, sizeof nft.why, "%s", msg ? msg : "dlopen libnftables.so.1 failed");
    return -1;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"nft_ctx_new", (void **)&nft.ctx_new},
      {"nft_ctx_free", (void **)&nft.ctx_free},
      {"nft_ctx_buffer_output", (void **)&nft.buffer_output},
      {"nft_ctx_buffer_error", (void **)&nft.buffer_error},
      {"nft_ctx_get_output_buffer", (void **)&nft.get_output},
      {"nft_ctx_get_error_buffer", (void **)&nft.get_error},
      {"nft_run_cmd_from_buffer", (void **)&nft.run},
      {"nft_ctx_output_set_flags", (void **)&nft.set_output_flags},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(h, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(nft.why, sizeof nft.why, "libnftables.so.1 lacks %s", syms[i].name);
      dlclose(h);
      return -1;
    }
  }
  nft.handle = h;
  return 0;
}

/* nftRun(text, outputFlags) → {ok, output, error}; throws Error{code:'ENFTLOAD'} when the
 * library cannot be loaded. */
static napi_value js_nft_run(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t flags = 0;
  if (get_args(env, info, 2, argv)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &flags) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "berth_net: flags must be a number");
    return NULL;
  }
  char *text = get_string(env, argv[0], "text");
  if (!text) return NULL;
  napi_value ret = NULL, obj, v;
  if (nft_load()) {
    napi_throw_error(env, "ENFTLOAD", nft.why);
    goto out;
  }
  struct nft_ctx *ctx = nft.ctx_new(0 /* NFT_CTX_DEFAULT */);
  if (!ctx) {
    napi_throw_error(env, "ENFTCTX", "nft_ctx_new failed");
    goto out;
  }
  nft.set_output_flags(ctx, flags);
  nft.buffer_output(ctx);
  nft.buffer_error(ctx);
  int rc = nft.run(ctx, text);
  const char *out = nft.get_output(ctx);
  const char *err = nft.get_error(ctx);
  if (napi_create_object(env, &obj) == napi_ok && napi_get_boolean(env, rc == 0, &v) == napi_ok &&
      napi_set_named_property(env, obj, "ok", v) == napi_ok && !set_str(env, obj, "output", out ? out : "") &&
      !set_str(env, obj, "error", err ? err : ""))
    ret = obj;
  nft.ctx_free(ctx);
out:
  free(text);
  return ret;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"createNetns", js_create_netns}, {"removeNetns", js_remove_netns}, {"makeShared", js_make_shared},
      {"ensureBridge", js_ensure_bridge}, {"addVeth", js_add_veth},       {"deleteLink", js_delete_link},
      {"deleteLinkAsync", js_delete_link_async},
      {"listLinks", js_list_links},     {"writeSysctl", js_write_sysctl}, {"nftRun", js_nft_run},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    CHECK(napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}
