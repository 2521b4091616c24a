/* ARCHIVE sessions: the worker (a fork of the agent) and its read side
 * (stat, get, export, list; walk.c walks the trees); extract.c is the write
 * side (put).
 *
 * The worker chroots to the container's root (joining the container's mount
 * namespace first while it runs, so volumes show as under docker cp) and
 * resolves every path with openat2(RESOLVE_IN_ROOT) from that root: "..", and
 * symlinks to "/" or "../..", stay inside, as Docker's chrooted archive code
 * does. Its stdout is the data (a tar stream, or the listing), its stderr
 * newline-terminated JSON objects the agent forwards as ARCHIVE_INFO. */
#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pathstat.h"
#include "tar.h"
#include "user.h"
#include "util.h"
#include "walk.h"


static int proc_fd = -1; /* the agent's /proc, opened before the chroot */
static const char *etc_files[3]; /* the agent's hostname, hosts, resolv.conf (or NULL) */

void vmc_archive_set_etc_files(const char *hostname, const char *hosts, const char *resolv_conf)
{
    etc_files[0] = hostname;
    etc_files[1] = hosts;
    etc_files[2] = resolv_conf;
}

/* A stopped container's "container" view: as when it runs, its /etc/hostname,
 * hosts and resolv.conf are the agent's files (bound in a mount namespace of the
 * worker's own, over the image's files where they exist: the disk is unchanged). */
static void bind_etc_files(void)
{
    static const char *const dst[3] = {"etc/hostname", "etc/hosts", "etc/resolv.conf"};
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        vmc_archive_fail(500, "private mount namespace: %s", strerror(errno));
    int root = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < 3 && root >= 0; i++) {
        if (etc_files[i] == NULL)
            continue;
        /* Resolved in the container's root (its /etc may be a symlink); made
         * empty when missing, as the first start makes it. */
        int t = vmc_open_in_root(root, dst[i], O_PATH | O_NOFOLLOW);
        if (t < 0 && errno == ENOENT) {
            int etc = vmc_open_in_root(root, "etc", O_PATH | O_DIRECTORY);
            int f = etc < 0 ? -1 : openat(etc, dst[i] + 4, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (f >= 0)
                close(f);
            if (etc >= 0)
                close(etc);
            t = vmc_open_in_root(root, dst[i], O_PATH | O_NOFOLLOW);
        }
        struct stat st;
        char target[64];
        if (t < 0 || fstatat(t, "", &st, AT_EMPTY_PATH) < 0 || !S_ISREG(st.st_mode)) {
            if (t >= 0)
                close(t);
            continue;
        }
        snprintf(target, sizeof target, "/proc/self/fd/%d", t);
        if (mount(etc_files[i], target, NULL, MS_BIND, NULL) < 0)
            vmc_archive_fail(500, "bind %s: %s", etc_files[i], strerror(errno));
        close(t);
    }
    if (root >= 0)
        close(root);
}

int vmc_open_in_root(int root, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT};
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof how);
}

char *vmc_fd_path(int fd)
{
    char link[64], buf[4096];
    snprintf(link, sizeof link, "self/fd/%d", fd);
    ssize_t n = readlinkat(proc_fd, link, buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

static void info_line(json_object *obj)
{
    const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    (void)!vmc_write_all(2, s, strlen(s));
    (void)!vmc_write_all(2, "\n", 1);
    json_object_put(obj);
}

void vmc_archive_fail(int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    json_object_object_add(o, "status", json_object_new_int(status));
    info_line(o);
    _exit(1);
}

char *vmc_archive_abs(const char *path)
{
    size_t n = strlen(path);
    char *out = malloc(n + 4), *work = strdup(path);
    if (out == NULL || work == NULL)
        vmc_archive_fail(500, "out of memory");
    size_t len = 0;
    for (char *save = NULL, *c = strtok_r(work, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, c, strlen(c));
        len += strlen(c);
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    free(work);
    const char *base = strrchr(path, '/');
    bool dot = strcmp(path, ".") == 0 || (base != NULL && strcmp(base, "/.") == 0);
    if (dot && strcmp(out, "/") != 0)
        strcat(out, "/.");
    else if (dot)
        strcat(out, ".");
    if (n > 0 && path[n - 1] == '/' && out[strlen(out) - 1] != '/')
        strcat(out, "/");
    return out;
}

/* GET: the stat line, then the tar of abs as Docker's TarResourceRebase names
 * it (a directory's entries under its base name, "." for a trailing "/."). */
static void op_get(int root, const char *abs, bool want_data)
{
    struct stat st;
    int fd;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "stat", vmc_path_stat(root, abs, &st, &fd));
    info_line(o);
    if (!want_data)
        _exit(0);
    char *base = vmc_go_base(abs), *canon = vmc_fd_path(fd);
    if (canon == NULL)
        vmc_archive_fail(500, "path of %s: %s", abs, strerror(errno));
    struct vmc_walk w = {.out = 1};
    const char *arc = strcmp(base, "/") == 0 ? "" : base;
    if (S_ISDIR(st.st_mode))
        vmc_walk(&w, fd, ".", canon, arc, true);
    else { /* canon has no symlink but maybe its last element */
        char *slash = strrchr(canon, '/');
        *slash = '\0';
        int dfd = vmc_open_in_root(root, *canon ? canon : "/", O_PATH | O_DIRECTORY);
        *slash = '/';
        if (dfd < 0)
            vmc_archive_fail(500, "open %s: %s", canon, strerror(errno));
        vmc_walk(&w, dfd, slash + 1, canon, arc, true);
    }
    if (vmc_tar_end(1) < 0)
        _exit(1);
    _exit(0);
}

/* EXPORT / LIST: the whole tree, or (paths) the NUL-separated paths read from
 * stdin, each alone (a directory without its contents). */
static void op_tree(int root, bool list, bool paths)
{
    struct vmc_walk w = {.out = 1, .list = list};
    if (!paths)
        vmc_walk(&w, root, ".", "/", "", true);
    else {
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap);
        for (ssize_t n; buf != NULL && (n = read(0, buf + len, cap - len - 1)) != 0;) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                vmc_archive_fail(500, "read paths: %s", strerror(errno));
            if ((len += (size_t)n) + 1 >= cap && (buf = realloc(buf, cap *= 2)) == NULL)
                break;
        }
        if (buf == NULL)
            vmc_archive_fail(500, "out of memory");
        buf[len] = '\0';
        for (char *p = buf; p < buf + len; p += strlen(p) + 1) {
            if (*p != '/')
                continue;
            char *dir = strdup(p), *slash = strrchr(dir, '/');
            *slash = '\0';
            int dfd = vmc_open_in_root(root, *dir ? dir : "/", O_PATH | O_DIRECTORY);
            free(dir);
            if (dfd < 0)
                continue;
            vmc_walk(&w, dfd, strrchr(p, '/') + 1, p, p + 1, false);
            close(dfd);
        }
        free(buf);
    }
    if (!list && vmc_tar_end(1) < 0)
        _exit(1);
    _exit(0);
}

static const char *req_str(json_object *req, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(req, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : "";
}

static bool req_bool(json_object *req, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(req, key, &v) && json_object_get_boolean(v);
}

static void worker(json_object *req, int mnt_ns, int root_dir, bool etc) __attribute__((noreturn));
static void worker(json_object *req, int mnt_ns, int root_dir, bool etc)
{
    signal(SIGPIPE, SIG_DFL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if ((proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        vmc_archive_fail(500, "open /proc: %s", strerror(errno));
    if (mnt_ns >= 0 && setns(mnt_ns, CLONE_NEWNS) < 0)
        vmc_archive_fail(409, "join the container's mount namespace: %s", strerror(errno));
    if (fchdir(root_dir) < 0)
        vmc_archive_fail(500, "chdir to the container's root: %s", strerror(errno));
    if (etc)
        bind_etc_files();
    if (chroot(".") < 0 || chdir("/") < 0)
        vmc_archive_fail(500, "chroot to the container's root: %s", strerror(errno));
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        vmc_archive_fail(500, "open /: %s", strerror(errno));
    umask(0);
    const char *op = req_str(req, "op");
    char *abs = vmc_archive_abs(req_str(req, "path"));
    if (strcmp(op, "stat") == 0 || strcmp(op, "get") == 0)
        op_get(root, abs, strcmp(op, "get") == 0);
    if (strcmp(op, "export") == 0 || strcmp(op, "list") == 0)
        op_tree(root, strcmp(op, "list") == 0, req_bool(req, "paths"));
    if (strcmp(op, "put") == 0) {
        struct vmc_user u = {0};
        char err[1024];
        bool chown_user = req_bool(req, "copy_uid_gid");
        if (chown_user && vmc_user_resolve(req_str(req, "user"), "/etc/passwd", "/etc/group", &u, err, sizeof err) < 0)
            vmc_archive_fail(500, "%s", err);
        vmc_extract(root, abs, req_bool(req, "no_overwrite_dir_non_dir"), true, u.uid, u.gid);
    }
    vmc_archive_fail(400, "unknown archive op \"%s\"", op);
}

int vmc_archive_start(json_object *req, pid_t main_pid, const char *rootfs, struct vmc_spawned *st)
{
    memset(st, 0, sizeof *st);
    st->out_fd = st->err_fd = st->in_fd = st->pty_fd = -1;
    int mnt = -1, dir = -1, in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rc = -1;
    char path[64];
    bool container_view = main_pid > 0 && strcmp(req_str(req, "view"), "rootfs") != 0;
    if (container_view) {
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)main_pid);
        mnt = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof path, "/proc/%d/root", (int)main_pid);
        dir = mnt < 0 ? -1 : open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    } else
        dir = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        snprintf(st->message, sizeof st->message, "container is not running: %s (errno %d)", strerror(errno), errno);
        goto out;
    }
    if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
        snprintf(st->message, sizeof st->message, "pipe2: %s (errno %d)", strerror(errno), errno);
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(st->message, sizeof st->message, "fork: %s (errno %d)", strerror(errno), errno);
        goto out;
    }
    if (pid == 0) {
        /* Only its stdio and these two: no other session's pipe stays open here. */
        int keep_mnt = mnt >= 0 ? 3 : -1;
        if (dup2(in_p[0], 0) < 0 || dup2(out_p[1], 1) < 0 || dup2(err_p[1], 2) < 0 || dup2(dir, 4) < 0 ||
            (mnt >= 0 && dup2(mnt, 3) < 0))
            _exit(1);
        syscall(SYS_close_range, 5u, ~0u, 0u);
        worker(req, keep_mnt, 4, main_pid <= 0 && strcmp(req_str(req, "view"), "rootfs") != 0);
    }
    st->pid = pid;
    st->in_fd = in_p[1];
    st->out_fd = out_p[0];
    st->err_fd = err_p[0];
    in_p[1] = out_p[0] = err_p[0] = -1;
    fcntl(st->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(st->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(st->err_fd, F_SETFL, O_NONBLOCK);
    rc = 0;
out:;
    int fds[] = {mnt, dir, in_p[0], in_p[1], out_p[0], out_p[1], err_p[0], err_p[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}
