/* Docker's ContainerPathStat of a path in the container: see pathstat.h. */
#include "pathstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"

/* Go's os.FileMode type bits (io/fs). */
#define GO_MODE_DIR (1u << 31)
#define GO_MODE_SYMLINK (1u << 27)
#define GO_MODE_DEVICE (1u << 26)
#define GO_MODE_NAMED_PIPE (1u << 25)
#define GO_MODE_SOCKET (1u << 24)
#define GO_MODE_SETUID (1u << 23)
#define GO_MODE_SETGID (1u << 22)
#define GO_MODE_CHAR_DEVICE (1u << 21)
#define GO_MODE_STICKY (1u << 20)

char *vmc_go_base(const char *abs)
{
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        n--;
    if (n == 1 && abs[0] == '/')
        return strdup("/");
    const char *s = abs + n;
    while (s > abs && s[-1] != '/')
        s--;
    return strndup(s, (size_t)(abs + n - s));
}

static unsigned go_mode(mode_t m)
{
    unsigned g = m & 0777;
    if (m & S_ISUID)
        g |= GO_MODE_SETUID;
    if (m & S_ISGID)
        g |= GO_MODE_SETGID;
    if (m & S_ISVTX)
        g |= GO_MODE_STICKY;
    if (S_ISDIR(m))
        g |= GO_MODE_DIR;
    else if (S_ISLNK(m))
        g |= GO_MODE_SYMLINK;
    else if (S_ISFIFO(m))
        g |= GO_MODE_NAMED_PIPE;
    else if (S_ISSOCK(m))
        g |= GO_MODE_SOCKET;
    else if (S_ISCHR(m))
        g |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE;
    else if (S_ISBLK(m))
        g |= GO_MODE_DEVICE;
    return g;
}

/* Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros dropped). */
static void go_time(const struct timespec *ts, char *out, size_t len)
{
    struct tm tm;
    time_t t = ts->tv_sec;
    gmtime_r(&t, &tm);
    char frac[16] = "";
    if (ts->tv_nsec) {
        snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
        for (size_t i = strlen(frac); frac[i - 1] == '0'; i--)
            frac[i - 1] = '\0';
    }
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
}

/* Docker's ContainerPathStat of abs: the last element not followed; a
 * symlink's linkTarget is its full resolution inside the root. */
json_object *vmc_path_stat(int root, const char *abs, struct stat *st, int *fd_out)
{
    int fd = vmc_open_in_root(root, abs, O_PATH | O_NOFOLLOW);
    if (fd < 0 || fstatat(fd, "", st, AT_EMPTY_PATH) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            vmc_archive_fail(404, "Could not find the file %s in container", abs);
        vmc_archive_fail(500, "stat %s: %s", abs, strerror(errno));
    }
    char *name = vmc_go_base(abs), mtime[64], *target = NULL;
    go_time(&st->st_mtim, mtime, sizeof mtime);
    if (S_ISLNK(st->st_mode)) {
        int t = vmc_open_in_root(root, abs, O_PATH);
        target = t >= 0 ? vmc_fd_path(t) : NULL;
        if (t >= 0)
            close(t);
        if (target == NULL) { /* dangling: the link's text, made absolute */
            char buf[4096];
            ssize_t n = readlinkat(fd, "", buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = '\0';
            target = strdup(buf);
        }
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "size", json_object_new_int64(st->st_size));
    json_object_object_add(o, "mode", json_object_new_int64(go_mode(st->st_mode)));
    json_object_object_add(o, "mtime", json_object_new_string(mtime));
    json_object_object_add(o, "linkTarget", json_object_new_string(target ? target : ""));
    free(name);
    free(target);
    *fd_out = fd;
    return o;
}
