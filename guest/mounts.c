/* Volumes (ext4 virtio-blk disks), bind mounts (virtio-9p shares) and tmpfs
 * mounts of the container, made in its mount namespace after chroot, so that
 * destinations resolve (symlinks included) inside the container's root only. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"
#include "util.h"

/* 9p: the Linux 9P2000.L client over virtio; cache=none (the default) so that
 * host changes show at once; msize 512 KiB for throughput. */
#define NINEP_OPTIONS "trans=virtio,version=9p2000.L,msize=524288,access=client"

static int fail(char *err, size_t errlen, const char *msg, size_t i)
{
    snprintf(err, errlen, "config.json: \"mounts[%zu]\": %s", i, msg);
    return -1;
}

static char *dup_member(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s))
        return NULL;
    return strdup(s);
}

int vmc_mounts_parse(json_object *root, struct vmc_mount **out, size_t *n, char *err, size_t errlen)
{
    json_object *arr;
    *out = NULL;
    *n = 0;
    if (!json_object_object_get_ex(root, "mounts", &arr) || arr == NULL)
        return 0;
    if (!json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "config.json: \"mounts\" must be an array");
        return -1;
    }
    size_t count = json_object_array_length(arr);
    struct vmc_mount *m = calloc(count + 1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "config.json: out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        json_object *item = json_object_array_get_idx(arr, i), *v;
        *n = i + 1;
        if (!json_object_is_type(item, json_type_object))
            goto bad_obj;
        char *type = dup_member(item, "type");
        if (type == NULL)
            goto bad_type;
        int known = 1;
        if (strcmp(type, "volume") == 0)
            m[i].type = VMC_MOUNT_VOLUME;
        else if (strcmp(type, "bind") == 0)
            m[i].type = VMC_MOUNT_BIND;
        else if (strcmp(type, "tmpfs") == 0)
            m[i].type = VMC_MOUNT_TMPFS;
        else
            known = 0;
        free(type);
        if (!known)
            goto bad_type;
        m[i].destination = dup_member(item, "destination");
        if (m[i].destination == NULL || m[i].destination[0] != '/' || strcmp(m[i].destination, "/") == 0) {
            fail(err, errlen, "\"destination\" must be an absolute path other than /", i);
            goto bad;
        }
        if (m[i].type == VMC_MOUNT_TMPFS) {
            if ((m[i].options = dup_member(item, "options")) == NULL && (m[i].options = strdup("")) == NULL)
                goto bad_obj;
        } else if ((m[i].source = dup_member(item, "source")) == NULL || m[i].source[0] == '\0') {
            fail(err, errlen, "\"source\" must be a non-empty string", i);
            goto bad;
        }
        if (json_object_object_get_ex(item, "subpath", &v) && v != NULL &&
            ((m[i].subpath = dup_member(item, "subpath")) == NULL || m[i].subpath[0] == '\0' ||
             m[i].subpath[0] == '/' || m[i].type != VMC_MOUNT_VOLUME)) {
            fail(err, errlen, "\"subpath\" must be a relative path, for a volume", i);
            goto bad;
        }
        if (json_object_object_get_ex(item, "readonly", &v) && v != NULL) {
            if (!json_object_is_type(v, json_type_boolean)) {
                fail(err, errlen, "\"readonly\" must be a boolean", i);
                goto bad;
            }
            m[i].readonly = json_object_get_boolean(v);
        }
    }
    *out = m;
    return 0;
bad_type:
    fail(err, errlen, "\"type\" must be \"volume\", \"bind\" or \"tmpfs\"", *n - 1);
    goto bad;
bad_obj:
    fail(err, errlen, "must be an object", *n - 1);
bad:
    vmc_mounts_free(m, *n);
    *n = 0;
    return -1;
}

void vmc_mounts_free(struct vmc_mount *m, size_t n)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].source);
        free(m[i].destination);
        free(m[i].options);
        free(m[i].subpath);
    }
    free(m);
}

static const struct {
    const char *word;
    unsigned long flag; /* 0: the word only clears (rw, exec, suid, dev, ...) */
} tmpfs_flags[] = {
    {"ro", MS_RDONLY},   {"rw", 0},         {"noexec", MS_NOEXEC},           {"exec", 0},
    {"nosuid", MS_NOSUID}, {"suid", 0},     {"nodev", MS_NODEV},             {"dev", 0},
    {"sync", MS_SYNCHRONOUS}, {"async", 0}, {"dirsync", MS_DIRSYNC},         {"noatime", MS_NOATIME},
    {"atime", 0},        {"nodiratime", MS_NODIRATIME}, {"diratime", 0},     {"relatime", MS_RELATIME},
    {"norelatime", 0},   {"strictatime", MS_STRICTATIME}, {"nostrictatime", 0},
};

/* tmpfs options "noexec,nosuid,size=16777216" into mount flags and data. */
static void tmpfs_options(const char *options, unsigned long *flags, char *data, size_t len)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", options);
    *flags = 0;
    data[0] = '\0';
    size_t used = 0;
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        if (strchr(w, '=') != NULL) {
            int k = snprintf(data + used, len - used, "%s%s", used ? "," : "", w);
            if (k < 0 || (size_t)k >= len - used)
                vmc_child_fail(VMC_EXIT_SETUP_FAILED, "tmpfs options too long: %s", options);
            used += (size_t)k;
            continue;
        }
        size_t i = 0;
        while (i < sizeof tmpfs_flags / sizeof tmpfs_flags[0] && strcmp(tmpfs_flags[i].word, w) != 0)
            i++;
        if (i == sizeof tmpfs_flags / sizeof tmpfs_flags[0])
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "invalid tmpfs option [\"%s\"]", w);
        *flags |= tmpfs_flags[i].flag;
    }
}

/* O_PATH descriptors of the subpaths, by mount index (this child's own). */
static int sub_fd[256];

void vmc_mounts_prepare(const struct vmc_mount *m, size_t n)
{
    for (size_t i = 0; i < n && i < sizeof sub_fd / sizeof sub_fd[0]; i++) {
        sub_fd[i] = -1;
        if (m[i].subpath == NULL)
            continue;
        char stage[64];
        snprintf(stage, sizeof stage, "/run/vmc-subpath-%zu", i);
        if (mkdir(stage, 0700) < 0 && errno != EEXIST)
            VMC_CHILD_SYSFAIL("mkdir", stage);
        if (mount(m[i].dev, stage, "ext4", 0, "noinit_itable") < 0)
            VMC_CHILD_SYSFAIL("mount volume on", stage);
        int root = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
        sub_fd[i] = root < 0 ? -1 : (int)syscall(SYS_openat2, root, m[i].subpath, &how, sizeof how);
        if (sub_fd[i] < 0) {
            int e = errno;
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "cannot access path %s/%s: %s (errno %d)", m[i].destination,
                           m[i].subpath, strerror(e), e);
        }
        if (root >= 0)
            close(root);
    }
}

void vmc_mounts_apply(const struct vmc_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *failed_at = NULL;
        if (vmc_mkdir_p(m[i].destination, 0755, &failed_at) < 0) {
            int e = errno;
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "create mount point %s (for %s): %s (errno %d)", failed_at,
                           m[i].destination, strerror(e), e);
        }
        unsigned long flags = m[i].readonly ? MS_RDONLY : 0;
        char data[1024];
        const char *src, *fstype;
        switch (m[i].type) {
        case VMC_MOUNT_VOLUME:
            if (m[i].subpath != NULL && i < sizeof sub_fd / sizeof sub_fd[0]) {
                char fdpath[64];
                snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", sub_fd[i]);
                if (mount(fdpath, m[i].destination, NULL, MS_BIND, NULL) < 0 ||
                    (m[i].readonly &&
                     mount(NULL, m[i].destination, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0))
                    VMC_CHILD_SYSFAIL("bind the volume's subpath on", m[i].destination);
                close(sub_fd[i]);
                continue;
            }
            /* noinit_itable: the host made the file system with lazy_itable_init,
             * and zeroing inode tables now would only fill the sparse image. */
            src = m[i].dev, fstype = "ext4";
            snprintf(data, sizeof data, "noinit_itable");
            break;
        case VMC_MOUNT_BIND:
            src = m[i].source, fstype = "9p";
            snprintf(data, sizeof data, NINEP_OPTIONS);
            break;
        default: {
            unsigned long tf;
            tmpfs_options(m[i].options, &tf, data, sizeof data);
            flags |= tf;
            src = "tmpfs", fstype = "tmpfs";
        }
        }
        if (mount(src, m[i].destination, fstype, flags, data) < 0) {
            int e = errno;
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "mount %s (%s) on %s: %s (errno %d)", src, fstype,
                           m[i].destination, strerror(e), e);
        }
    }
}
