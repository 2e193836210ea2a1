/*
 * berth_sys.node: the few syscalls the daemon needs in-process and Node lacks (mknod,
 * l*xattr, mount, umount2, the new mount API for overlay). Synchronous and policy-free:
 * src/host/sys.ts owns the JavaScript shape, the fallbacks and the error messages.
 *
 * A failing syscall throws an Error carrying errno (positive), syscall and path;
 * sys.ts rewrites it into a Node fs-style error.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, NULL, "berth_sys: N-API call failed: " #call);              \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

/* Throws Error{errno, syscall, path?, key?, detail?}; the message is rebuilt in sys.ts. */
static napi_value throw_errno_key(napi_env env, int err, const char *syscall, const char *path,
                                  const char *key, const char *detail) {
  napi_value msg, error, v;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, msg, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "syscall", v);
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "path", v);
  if (key && napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "key", v);
  if (detail && detail[0] && napi_create_string_utf8(env, detail, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "detail", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *detail) {
  return throw_errno_key(env, err, syscall, path, NULL, detail);
}

/* A JS string as a malloc'd C string; NULL (with a pending exception) when it is not a
 * string or holds a NUL byte, which would silently cut a path short. */
static char *get_string(napi_env env, napi_value value, const char *what) {
  size_t len = 0, got = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "berth_sys: %s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (!buf) {
    napi_throw_error(env, NULL, "berth_sys: out of memory");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, value, buf, len + 1, &got) != napi_ok || strlen(buf) != len) {
    char msg[128];
    snprintf(msg, sizeof msg, "berth_sys: %s must be a string without null bytes", what);
    free(buf);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
  return buf;
}

/* A string or null/undefined (→ *out = NULL). Returns 0 on success. */
static int get_optional_string(napi_env env, napi_value value, const char *what, char **out) {
  napi_valuetype type;
  *out = NULL;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_null || type == napi_undefined) return 0;
  *out = get_string(env, value, what);
  return *out ? 0 : -1;
}

static int get_u32(napi_env env, napi_value value, const char *what, uint32_t *out) {
  if (napi_get_value_uint32(env, value, out) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "berth_sys: %s must be a number", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  return 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "berth_sys: missing arguments");
    return -1;
  }
  return 0;
}

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* mknod(path, mode, major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t mode, major, minor;
  if (get_args(env, info, 4, argv) || get_u32(env, argv[1], "mode", &mode) ||
      get_u32(env, argv[2], "major", &major) || get_u32(env, argv[3], "minor", &minor))
    return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  napi_value ret = undefined(env);
  if (mknod(path, (mode_t)mode, makedev(major, minor)) < 0) ret = throw_errno(env, errno, "mknod", path, NULL);
  free(path);
  return ret;
}

/* lsetxattr(path, name, buffer) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *data = NULL;
  size_t size = 0;
  if (get_args(env, info, 3, argv)) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &size) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "berth_sys: value must be a Buffer");
    return NULL;
  }
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (!name) {
    free(path);
    return NULL;
  }
  napi_value ret = undefined(env);
  if (lsetxattr(path, name, data, size, 0) < 0) ret = throw_errno(env, errno, "lsetxattr", path, NULL);
  free(name);
  free(path);
  return ret;
}

/*
 * lgetxattr (name given) or llistxattr (name NULL) into a malloc'd buffer: ask the size,
 * then read, again if the value grew in between (ERANGE). Returns the length, or -1 with
 * errno set (ENOMEM when malloc failed); *out is the caller's to free either way.
 */
static ssize_t read_xattr(const char *path, const char *name, char **out) {
  *out = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = name ? lgetxattr(path, name, NULL, 0) : llistxattr(path, NULL, 0);
    if (size < 0) return -1;
    free(*out);
    *out = malloc(size > 0 ? (size_t)size : 1);
    if (!*out) {
      errno = ENOMEM;
      return -1;
    }
    ssize_t got = name ? lgetxattr(path, name, *out, (size_t)size) : llistxattr(path, *out, (size_t)size);
    if (got >= 0 || errno != ERANGE) return got;
  }
  return -1;
}

/* lgetxattr(path, name) → Buffer, or undefined when the attribute does not exist. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (!name) {
    free(path);
    return NULL;
  }
  napi_value ret = NULL;
  char *buf;
  ssize_t got = read_xattr(path, name, &buf);
  if (got >= 0) {
    void *dest;
    if (napi_create_buffer_copy(env, (size_t)got, buf, &dest, &ret) != napi_ok) {
      napi_throw_error(env, NULL, "berth_sys: cannot create Buffer");
      ret = NULL;
    }
  } else if (errno == ENODATA) {
    ret = undefined(env);
  } else {
    throw_errno(env, errno, "lgetxattr", path, NULL);
  }
  free(buf);
  free(name);
  free(path);
  return ret;
}

/* llistxattr(path) → string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  napi_value ret = NULL;
  char *buf;
  ssize_t got = read_xattr(path, NULL, &buf);
  if (got < 0) {
    throw_errno(env, errno, "llistxattr", path, NULL);
    goto out;
  }
  if (napi_create_array(env, &ret) != napi_ok) {
    ret = NULL;
    goto out;
  }
  uint32_t index = 0;
  for (ssize_t pos = 0; pos < got;) {
    size_t len = strnlen(buf + pos, (size_t)(got - pos));
    napi_value name;
    if (len > 0) {
      if (napi_create_string_utf8(env, buf + pos, len, &name) != napi_ok ||
          napi_set_element(env, ret, index++, name) != napi_ok) {
        ret = NULL;
        goto out;
      }
    }
    pos += (ssize_t)len + 1;
  }
out:
  free(buf);
  free(path);
  return ret;
}

/* mount(source, target, fstype|null, flags, data|null) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint32_t flags;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  napi_value ret = NULL;
  if (get_args(env, info, 5, argv) || get_u32(env, argv[3], "flags", &flags)) return NULL;
  if (get_optional_string(env, argv[0], "source", &source) || !(target = get_string(env, argv[1], "target")) ||
      get_optional_string(env, argv[2], "fstype", &fstype) || get_optional_string(env, argv[4], "data", &data))
    goto out;
  ret = undefined(env);
  if (mount(source, target, fstype, (unsigned long)flags, data) < 0) ret = throw_errno(env, errno, "mount", target, NULL);
out:
  free(source);
  free(target);
  free(fstype);
  free(data);
  return ret;
}

/* umount2(target, flags) */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t flags;
  if (get_args(env, info, 2, argv) || get_u32(env, argv[1], "flags", &flags)) return NULL;
  char *target = get_string(env, argv[0], "target");
  if (!target) return NULL;
  napi_value ret = undefined(env);
  if (umount2(target, (int)flags) < 0) ret = throw_errno(env, errno, "umount2", target, NULL);
  free(target);
  return ret;
}

/* The kernel explains fsconfig/fsmount failures in the context's message log
 * ("e overlay: ..."); keep the last error line for the exception. */
static void read_fs_log(int fsfd, char *out, size_t outlen) {
  char line[512];
  out[0] = '\0';
  for (int i = 0; i < 32; i++) {
    ssize_t n = read(fsfd, line, sizeof line - 1);
    if (n <= 0) break;
    line[n] = '\0';
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    if (line[0] == 'e' || out[0] == '\0') {
      const char *text = (line[0] && line[1] == ' ') ? line + 2 : line;
      snprintf(out, outlen, "%s", text);
    }
  }
}

static int option_attr(const char *opt, unsigned int *attrs) {
  static const struct {
    const char *name;
    unsigned int attr;
  } table[] = {
      {"ro", MOUNT_ATTR_RDONLY},     {"nosuid", MOUNT_ATTR_NOSUID},         {"nodev", MOUNT_ATTR_NODEV},
      {"noexec", MOUNT_ATTR_NOEXEC}, {"noatime", MOUNT_ATTR_NOATIME},       {"relatime", MOUNT_ATTR_RELATIME},
      {"nodiratime", MOUNT_ATTR_NODIRATIME}, {"strictatime", MOUNT_ATTR_STRICTATIME},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(opt, table[i].name) == 0) {
      *attrs |= table[i].attr;
      return 1;
    }
  }
  return 0;
}

/* One string element of a JS array, or NULL with a pending exception. */
static char *array_string(napi_env env, napi_value array, uint32_t i, const char *what) {
  napi_value v;
  if (napi_get_element(env, array, i, &v) != napi_ok) {
    napi_throw_error(env, NULL, "berth_sys: cannot read array element");
    return NULL;
  }
  return get_string(env, v, what);
}

/*
 * overlayMount(target, lower[], upper|null, work|null, options[]) with the new mount
 * API: one fsconfig("lowerdir+") per layer, so no option-page limit. Errors name the
 * syscall (fsopen, fsconfig with its key, fsmount, move_mount) and carry the kernel's
 * own explanation; sys.ts falls back to mount(2) where this API is missing.
 */
static napi_value js_overlay_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint32_t nlower = 0, nopts = 0;
  char *target = NULL, *upper = NULL, *work = NULL, *item = NULL;
  char detail[512] = "";
  int fsfd = -1, mfd = -1;
  unsigned int attrs = 0;
  napi_value ret = NULL;

  if (get_args(env, info, 5, argv)) return NULL;
  if (napi_get_array_length(env, argv[1], &nlower) != napi_ok || napi_get_array_length(env, argv[4], &nopts) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "berth_sys: lower and options must be arrays");
    return NULL;
  }
  if (!(target = get_string(env, argv[0], "target")) || get_optional_string(env, argv[2], "upper", &upper) ||
      get_optional_string(env, argv[3], "work", &work))
    goto out;

  fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) {
    throw_errno(env, errno, "fsopen", target, NULL);
    goto out;
  }
  for (uint32_t i = 0; i < nlower; i++) {
    if (!(item = array_string(env, argv[1], i, "lower layer"))) goto out;
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", item, 0) < 0) {
      int err = errno;
      read_fs_log(fsfd, detail, sizeof detail);
      throw_errno_key(env, err, "fsconfig", item, "lowerdir+", detail);
      goto out;
    }
    free(item);
    item = NULL;
  }
  if (upper && fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) {
    int err = errno;
    read_fs_log(fsfd, detail, sizeof detail);
    throw_errno_key(env, err, "fsconfig", upper, "upperdir", detail);
    goto out;
  }
  if (work && fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
    int err = errno;
    read_fs_log(fsfd, detail, sizeof detail);
    throw_errno_key(env, err, "fsconfig", work, "workdir", detail);
    goto out;
  }
  for (uint32_t i = 0; i < nopts; i++) {
    if (!(item = array_string(env, argv[4], i, "option"))) goto out;
    if (!option_attr(item, &attrs)) {
      char *eq = strchr(item, '=');
      int rc;
      if (eq) {
        *eq = '\0';
        rc = fsconfig(fsfd, FSCONFIG_SET_STRING, item, eq + 1, 0);
        *eq = '=';
      } else {
        rc = fsconfig(fsfd, FSCONFIG_SET_FLAG, item, NULL, 0);
      }
      if (rc < 0) {
        int err = errno;
        read_fs_log(fsfd, detail, sizeof detail);
        throw_errno_key(env, err, "fsconfig", target, item, detail);
        goto out;
      }
    }
    free(item);
    item = NULL;
  }
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int err = errno;
    read_fs_log(fsfd, detail, sizeof detail);
    throw_errno_key(env, err, "fsconfig", target, "create", detail);
    goto out;
  }
  mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
  if (mfd < 0) {
    int err = errno;
    read_fs_log(fsfd, detail, sizeof detail);
    throw_errno(env, err, "fsmount", target, detail);
    goto out;
  }
  if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    throw_errno(env, errno, "move_mount", target, NULL);
    goto out;
  }
  ret = undefined(env);
out:
  if (mfd >= 0) close(mfd);
  if (fsfd >= 0) close(fsfd);
  free(item);
  free(target);
  free(upper);
  free(work);
  return ret;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"mknod", js_mknod},   {"lsetxattr", js_lsetxattr}, {"lgetxattr", js_lgetxattr},
      {"llistxattr", js_llistxattr}, {"mount", js_mount}, {"umount2", js_umount2},
      {"overlayMount", js_overlay_mount},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    CHECK(napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}
