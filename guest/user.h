/* Docker's --user against the image's /etc/passwd and /etc/group, as runc
 * (github.com/moby/sys/user GetExecUser) resolves it. No NSS: the agent is static
 * and the files are the image's, read inside the container's root. */
#ifndef VMC_USER_H
#define VMC_USER_H

#include <stddef.h>
#include <sys/types.h>

struct vmc_user {
    uid_t uid;
    gid_t gid;
    gid_t *sgids; /* supplementary groups: those of /etc/group that list the user */
    size_t nsgids;
    char *home; /* from passwd; "/" when none */
};

/* spec: "", "uid", "uid:gid", "name", "name:group", "uid:group", "name:gid".
 * 0, or -1 with Docker's message in err. A missing passwd/group file is read as
 * empty, as runc does. */
int vmc_user_resolve(const char *spec, const char *passwd_path, const char *group_path, struct vmc_user *out,
                     char *err, size_t errlen);
void vmc_user_free(struct vmc_user *u);

/* One GroupAdd entry: a number as it is, a name looked up in group_path. 0, or -1
 * with runc's message ("unable to find group NAME: no matching entries in group
 * file") in err. */
int vmc_group_resolve(const char *name, const char *group_path, gid_t *out, char *err, size_t errlen);

#endif
