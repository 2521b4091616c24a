/* The archive worker's tree walker: see walk.h. Never follows a symlink: every
 * entry is opened relative to its directory with O_NOFOLLOW. */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "archive.h"
#include "tar.h"

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif


/* Pseudo filesystems the container's mount namespace has (Docker's archive
 * code never sees them: they are not in its view of the rootfs). */
static bool skip_contents(int dirfd, const char *rel)
{
    struct statfs fs;
    if (fstatfs(dirfd, &fs) < 0)
        return false;
    switch ((unsigned long)fs.f_type) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEVPTS_SUPER_MAGIC: case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC: case MQUEUE_MAGIC:
        return true;
    case TMPFS_MAGIC: /* devtmpfs on /dev and the tmpfs on /dev/shm */
        return strcmp(rel, "/dev") == 0 || strncmp(rel, "/dev/", 5) == 0;
    }
    return false;
}

static void emit_one(struct vmc_walk *w, int dirfd, const char *name, const char *rel, const char *arc,
                     const struct stat *st)
{
    char link[4096];
    const char *target = NULL;
    char type;
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, name, link, sizeof link - 1);
        link[n > 0 ? n : 0] = '\0';
        target = link;
    }
    if (w->list) {
        char head[160];
        int n = snprintf(head, sizeof head, "%o %u %u %lld %lld ", (unsigned)st->st_mode, (unsigned)st->st_uid,
                         (unsigned)st->st_gid, (long long)st->st_size, (long long)st->st_mtim.tv_sec);
        if (vmc_write_all(w->out, head, (size_t)n) < 0 || vmc_write_all(w->out, rel, strlen(rel) + 1) < 0 ||
            vmc_write_all(w->out, target ? target : "", strlen(target ? target : "") + 1) < 0)
            _exit(1);
        return;
    }
    if (S_ISSOCK(st->st_mode))
        return; /* tar has no sockets; Docker skips them */
    type = S_ISDIR(st->st_mode) ? '5' : S_ISLNK(st->st_mode) ? '2' : S_ISCHR(st->st_mode) ? '3'
         : S_ISBLK(st->st_mode) ? '4' : S_ISFIFO(st->st_mode) ? '6' : '0';
    if (type == '0' && st->st_nlink > 1) {
        for (size_t i = 0; i < w->nlinks; i++)
            if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino) {
                type = '1';
                target = w->links[i].name;
                break;
            }
        if (type == '0' && w->nlinks < 1u << 20) {
            if (w->nlinks == w->caplinks) {
                w->caplinks = w->caplinks ? 2 * w->caplinks : 64;
                w->links = realloc(w->links, w->caplinks * sizeof *w->links);
                if (w->links == NULL)
                    vmc_archive_fail(500, "out of memory");
            }
            w->links[w->nlinks].dev = st->st_dev;
            w->links[w->nlinks].ino = st->st_ino;
            w->links[w->nlinks++].name = strdup(arc);
        }
    }
    int fd = -1;
    if (type == '0' && (fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0)
        return; /* vanished or unreadable meanwhile: left out, as a changing tree allows */
    char *dirname = NULL;
    if (type == '5' && asprintf(&dirname, "%s/", arc) < 0)
        vmc_archive_fail(500, "out of memory");
    if (vmc_tar_header(w->out, dirname ? dirname : arc, st, type, target) < 0 ||
        (fd >= 0 && vmc_tar_data(w->out, fd, (uint64_t)st->st_size) < 0))
        _exit(1); /* the host went away */
    free(dirname);
    if (fd >= 0)
        close(fd);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void vmc_walk(struct vmc_walk *w, int dirfd, const char *name, const char *rel, const char *arc, bool recurse)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (*arc)
        emit_one(w, dirfd, name, rel, arc, &st);
    if (!recurse || !S_ISDIR(st.st_mode))
        return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || skip_contents(fd, rel)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    DIR *d = fdopendir(dup(fd));
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap && (names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)) == NULL)
            vmc_archive_fail(500, "out of memory");
        names[n++] = strdup(de->d_name);
    }
    if (d != NULL)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char *crel, *carc;
        if (asprintf(&crel, "%s/%s", strcmp(rel, "/") == 0 ? "" : rel, names[i]) < 0 ||
            asprintf(&carc, "%s%s%s", arc, *arc ? "/" : "", names[i]) < 0)
            vmc_archive_fail(500, "out of memory");
        vmc_walk(w, fd, names[i], crel, carc, true);
        free(crel);
        free(carc);
        free(names[i]);
    }
    free(names);
    close(fd);
}

