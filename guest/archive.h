/* ARCHIVE sessions (guest/PROTOCOL.md): docker cp, export and the listing for
 * diff/commit, served by a worker process the agent forks per request. */
#ifndef VMC_ARCHIVE_H
#define VMC_ARCHIVE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "spawn.h"

/* Start the worker for request req (an ARCHIVE payload, already parsed).
 * main_pid > 0: the container runs; view "container" then joins its mount
 * namespace and root (its volumes and mounts visible), view "rootfs" works on
 * rootfs (the agent's own mount of the root filesystem: no mounts on top).
 * main_pid <= 0 (maintenance boot): rootfs for every view.
 * 0: st has pid, out_fd (the tar stream or listing), err_fd (ARCHIVE_INFO
 * lines), in_fd (the stdin pipe), all O_NONBLOCK|O_CLOEXEC on the agent's side;
 * -1: the agent could not start it (st->message). */
int vmc_archive_start(json_object *req, pid_t main_pid, const char *rootfs, struct vmc_spawned *st);

/* The agent's copies of /etc/hostname, hosts, resolv.conf (NULL: none), shown
 * in a maintenance boot's "container" view as a running container shows them. */
void vmc_archive_set_etc_files(const char *hostname, const char *hosts, const char *resolv_conf);

/* Worker helpers shared with extract.c (they run in the worker only). */

/* openat2(root, path, flags, RESOLVE_IN_ROOT): path taken inside root, every
 * symlink and ".." kept inside it. -1 with errno. */
int vmc_open_in_root(int root, const char *path, int flags);
/* The path of fd as the worker (chrooted to the container's root) sees it,
 * through the agent's /proc opened before the chroot. NULL with errno. */
char *vmc_fd_path(int fd);
/* One ARCHIVE_INFO line {"error": msg, "status": http} on fd 2, then _exit(1). */
void vmc_archive_fail(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* Lexical clean of "/" + path as Go's filepath.Join("/", path), keeping a
 * trailing "/." or "/" of path as Docker's PreserveTrailingDotOrSeparator. */
char *vmc_archive_abs(const char *path);

/* PUT: extract the tar on fd 0 under dest (resolved in root, last element
 * followed). Never returns (exit 0 or vmc_archive_fail). */
void vmc_extract(int root, const char *dest, bool no_overwrite_dir_non_dir, bool chown, uid_t uid, gid_t gid)
    __attribute__((noreturn));

#endif
