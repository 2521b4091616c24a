/* Walking a tree of the container for the archive worker: tar entries (get,
 * export) or listing records (list), written to a blocking fd. */
#ifndef VMC_WALK_H
#define VMC_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vmc_walk {
    int out;
    bool list; /* listing records (PROTOCOL.md "Archive sessions") instead of tar entries */
    struct { dev_t dev; ino_t ino; char *name; } *links; /* hard links already written */
    size_t nlinks, caplinks;
};

/* The entry name in dirfd ("." for dirfd itself), rel its path in the
 * container, arc its archive name ("": not emitted, e.g. the root). Recurses
 * into directories when recurse, in byte order, not into the contents of
 * /proc, /sys, /dev and other pseudo filesystems. Sockets are left out of tars.
 * Exits the worker (1) when out fails: the host went away. */
void vmc_walk(struct vmc_walk *w, int dirfd, const char *name, const char *rel, const char *arc, bool recurse);

#endif
