/* PUT /containers/{id}/archive: extract a tar stream (fd 0) into a directory
 * of the container, as Docker's archive.Untar does in its chroot:
 *
 * - names are cleaned; one that leaves the destination ("../x", "a/../../x",
 *   "..") is refused ("breakout"), an absolute one is taken below it;
 * - every parent is resolved with openat2(RESOLVE_IN_ROOT) from the container's
 *   root, so a symlink in the tree (or one the archive made earlier) can never
 *   lead out of it; the last element is never followed (O_NOFOLLOW, *at calls
 *   with AT_SYMLINK_NOFOLLOW); missing parents are made (0755);
 * - a hard link's target must be inside the destination, a symlink's target
 *   (taken from the link's directory) too, as Docker checks;
 * - an existing entry is replaced unless both are directories (then merged);
 *   with noOverwriteDirNonDir, replacing a directory by a non-directory or the
 *   reverse fails with Docker's message;
 * - owner: root, or (copyUIDGID) the container's user, as Docker's
 *   tarCopyOptions; mode and mtime from the archive; directories' mtimes are
 *   set last. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "archive.h"
#include "tar.h"

struct dirtime { char *path; int64_t mtime; };

/* Lexical clean of a relative name: NULL when it climbs out. "" is the root. */
static char *clean_rel(const char *name)
{
    char *work = strdup(name), *out = calloc(1, strlen(name) + 2);
    size_t len = 0;
    if (work == NULL || out == NULL)
        vmc_archive_fail(500, "out of memory");
    for (char *save = NULL, *c = strtok_r(work, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (len == 0) {
                free(work);
                free(out);
                return NULL;
            }
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        if (len > 0)
            out[len++] = '/';
        memcpy(out + len, c, strlen(c));
        len += strlen(c);
    }
    out[len] = '\0';
    free(work);
    return out;
}

/* The directory dir (a canonical path in the container), made when missing. */
static int open_parent(int root, const char *dir)
{
    int fd = vmc_open_in_root(root, dir, O_PATH | O_DIRECTORY);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    char *copy = strdup(dir), *slash = strrchr(copy, '/');
    if (slash == NULL || slash == copy) {
        free(copy);
        errno = ENOENT;
        return -1;
    }
    *slash = '\0';
    int up = open_parent(root, copy);
    if (up >= 0 && mkdirat(up, slash + 1, 0755) < 0 && errno != EEXIST) {
        close(up);
        up = -1;
    }
    free(copy);
    if (up < 0)
        return -1;
    close(up);
    return vmc_open_in_root(root, dir, O_PATH | O_DIRECTORY);
}

/* rm -rf of name in dirfd, never following a symlink. */
static int remove_all(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int dup_fd = dup(fd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && remove_all(fd, de->d_name) < 0)
            break;
    if (d != NULL)
        closedir(d);
    close(fd);
    return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int write_file(int dirfd, const char *base, const struct vmc_tar_entry *e)
{
    int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = vmc_tar_copy(0, fd, e->size);
    int e2 = errno;
    close(fd);
    errno = e2;
    return rc;
}

void vmc_extract(int root, const char *dest, bool no_overwrite, bool do_chown, uid_t uid, gid_t gid)
{
    int dfd = vmc_open_in_root(root, dest, O_PATH);
    struct stat st;
    if (dfd < 0 || fstatat(dfd, "", &st, AT_EMPTY_PATH) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            vmc_archive_fail(404, "Could not find the file %s in container", dest);
        vmc_archive_fail(500, "%s: %s", dest, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        vmc_archive_fail(500, "extraction point is not a directory"); /* Docker: 500 */
    char *base_dir = vmc_fd_path(dfd);
    if (base_dir == NULL)
        vmc_archive_fail(500, "path of %s: %s", dest, strerror(errno));
    if (strcmp(base_dir, "/") == 0)
        base_dir[0] = '\0';
    struct dirtime *dirs = NULL;
    size_t ndirs = 0;
    char err[512];
    struct vmc_tar_entry e;
    int r;
    while ((r = vmc_tar_next(0, &e, err, sizeof err)) == 1) {
        char *rel = clean_rel(e.name);
        if (rel == NULL)
            vmc_archive_fail(400, "invalid archive: \"%s\" is outside of \"%s\"", e.name, dest);
        if (*rel == '\0') { /* the destination itself: merged, nothing to do */
            if (vmc_tar_skip(0, e.type == '0' ? e.size : 0) < 0)
                vmc_archive_fail(500, "read archive: %s", strerror(errno));
            free(rel);
            vmc_tar_entry_free(&e);
            continue;
        }
        char *path, *slash;
        if (asprintf(&path, "%s/%s", base_dir, rel) < 0)
            vmc_archive_fail(500, "out of memory");
        slash = strrchr(path, '/');
        *slash = '\0';
        int pfd = open_parent(root, *path ? path : "/");
        *slash = '/';
        const char *base = slash + 1;
        if (pfd < 0)
            vmc_archive_fail(500, "mkdir %.*s: %s", (int)(slash - path), path, strerror(errno));
        bool is_dir = e.type == '5';
        struct stat old;
        if (fstatat(pfd, base, &old, AT_SYMLINK_NOFOLLOW) == 0) {
            if (no_overwrite && S_ISDIR(old.st_mode) && !is_dir)
                vmc_archive_fail(500, "cannot overwrite directory \"%s\" with non-directory \"%s\"", path, dest);
            if (no_overwrite && !S_ISDIR(old.st_mode) && is_dir)
                vmc_archive_fail(500, "cannot overwrite non-directory \"%s\" with directory \"%s\"", path, dest);
            if (!(S_ISDIR(old.st_mode) && is_dir) && remove_all(pfd, base) < 0)
                vmc_archive_fail(500, "remove %s: %s", path, strerror(errno));
        }
        int rc = 0;
        switch (e.type) {
        case '5':
            rc = mkdirat(pfd, base, 0700) < 0 && errno != EEXIST ? -1 : 0;
            break;
        case '0':
            rc = write_file(pfd, base, &e);
            break;
        case '2': {
            /* Docker: the target, taken from the link's directory, must stay below dest. */
            char *joined = NULL;
            const char *r2 = strrchr(rel, '/');
            if (e.link == NULL)
                vmc_archive_fail(400, "invalid archive: symlink %s without a target", e.name);
            if (asprintf(&joined, "%.*s/%s", e.link[0] == '/' ? 0 : r2 ? (int)(r2 - rel) : 0, rel, e.link) < 0)
                vmc_archive_fail(500, "out of memory");
            char *check = clean_rel(joined);
            free(joined);
            if (check == NULL)
                vmc_archive_fail(400, "invalid symlink \"%s\" -> \"%s\"", e.name, e.link);
            free(check);
            rc = symlinkat(e.link, pfd, base);
            break;
        }
        case '1': {
            char *target = e.link ? clean_rel(e.link) : NULL, *tpath, *ts;
            if (target == NULL || *target == '\0')
                vmc_archive_fail(400, "invalid hardlink \"%s\" -> \"%s\"", e.name, e.link ? e.link : "");
            if (asprintf(&tpath, "%s/%s", base_dir, target) < 0)
                vmc_archive_fail(500, "out of memory");
            ts = strrchr(tpath, '/');
            *ts = '\0';
            int tfd = vmc_open_in_root(root, *tpath ? tpath : "/", O_PATH | O_DIRECTORY);
            rc = tfd < 0 ? -1 : linkat(tfd, ts + 1, pfd, base, 0);
            if (tfd >= 0)
                close(tfd);
            free(tpath);
            free(target);
            break;
        }
        case '3': case '4': case '6': {
            mode_t kind = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
            rc = mknodat(pfd, base, kind | 0600, makedev(e.devmajor, e.devminor));
            break;
        }
        default: /* Docker ignores what it cannot make (e.g. GNU sparse is rare) */
            if (vmc_tar_skip(0, e.size) < 0)
                vmc_archive_fail(500, "read archive: %s", strerror(errno));
            rc = 1;
        }
        if (rc < 0)
            vmc_archive_fail(500, "extract %s: %s", path, strerror(errno));
        if (rc == 0 && e.type != '1') {
            if (do_chown && fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                vmc_archive_fail(500, "lchown %s: %s", path, strerror(errno));
            if (e.type != '2' && fchmodat(pfd, base, e.mode, 0) < 0)
                vmc_archive_fail(500, "chmod %s: %s", path, strerror(errno));
            struct timespec ts[2] = {{.tv_sec = e.mtime}, {.tv_sec = e.mtime}};
            if (is_dir) {
                if (!(dirs = realloc(dirs, (ndirs + 1) * sizeof *dirs)))
                    vmc_archive_fail(500, "out of memory");
                dirs[ndirs++] = (struct dirtime){strdup(path), e.mtime};
            } else
                (void)utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        }
        close(pfd);
        free(path);
        free(rel);
        vmc_tar_entry_free(&e);
    }
    if (r < 0)
        vmc_archive_fail(500, "%s", err);
    for (size_t i = ndirs; i-- > 0;) {
        int fd = vmc_open_in_root(root, dirs[i].path, O_RDONLY | O_NOFOLLOW | O_DIRECTORY);
        struct timespec ts[2] = {{.tv_sec = dirs[i].mtime}, {.tv_sec = dirs[i].mtime}};
        if (fd >= 0) {
            (void)futimens(fd, ts);
            close(fd);
        }
    }
    /* drain what follows the end blocks, so that the host's writes never fail */
    char sink[4096];
    while (read(0, sink, sizeof sink) > 0)
        ;
    /* On disk before the answer: a maintenance VM is ended right after it. */
    int sfd = vmc_open_in_root(root, *base_dir ? base_dir : "/", O_RDONLY | O_DIRECTORY);
    if (sfd < 0 || syncfs(sfd) < 0)
        vmc_archive_fail(500, "syncfs %s: %s", dest, strerror(errno));
    _exit(0);
}
