/* The container's volumes, bind mounts and tmpfs mounts ("mounts" of the config,
 * guest/PROTOCOL.md). */
#ifndef VMC_MOUNTS_H
#define VMC_MOUNTS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

enum vmc_mount_type { VMC_MOUNT_VOLUME, VMC_MOUNT_BIND, VMC_MOUNT_TMPFS };

struct vmc_mount {
    enum vmc_mount_type type;
    char *source;      /* volume: disk serial; bind: 9p mount tag; tmpfs: NULL */
    char *destination; /* absolute path in the container */
    char *options;     /* tmpfs: flags and data, comma-separated; else NULL */
    char *subpath;     /* volume: the directory of the volume to mount; NULL: all */
    bool readonly;
    char dev[64]; /* volume: /dev/vdX, filled in by the agent before the start */
};

/* Parse the optional "mounts" array of the config root into *out (count *n).
 * 0, or -1 with a message in err. */
int vmc_mounts_parse(json_object *root, struct vmc_mount **out, size_t *n, char *err, size_t errlen);
void vmc_mounts_free(struct vmc_mount *m, size_t n);

/* In the child, before it leaves the initramfs: mount each volume that has a
 * subpath on a staging directory and open the subpath (resolved inside the
 * volume: symlinks cannot leave it). Failures end the child (125). */
void vmc_mounts_prepare(const struct vmc_mount *m, size_t n);

/* In the container's root (after chroot, /proc and /dev mounted): make each
 * destination (mkdir -p, symlinks resolved inside the root) and mount it, in
 * order. Failures end the child with a 125 start error. */
void vmc_mounts_apply(const struct vmc_mount *m, size_t n);

#endif
