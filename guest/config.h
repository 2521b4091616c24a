/* /config.json of the config disk (guest/PROTOCOL.md, "Container config"). */
#ifndef VMC_CONFIG_H
#define VMC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct vmc_config {
    int version;
    char *id;
    char *hostname;    /* NULL when absent: the image's files are left alone */
    char *hosts;       /* NULL when absent */
    char *resolv_conf; /* NULL when absent */
    char *rootfs_serial;
    char *rootfs_fstype; /* default "ext4" */
    bool rootfs_readonly;
    char **args; /* NULL-terminated, at least one */
    char **env;  /* NULL-terminated */
    size_t nenv;
    char *cwd;  /* absolute; default "/" */
    char *user; /* Docker's --user; default "" */
};

/* Parse text (len bytes). 0, or -1 with a message in err (the config is then
 * freed). Unknown keys are ignored, so that later versions can add some. */
int vmc_config_parse(const char *text, size_t len, struct vmc_config *cfg, char *err, size_t errlen);
void vmc_config_free(struct vmc_config *cfg);

#endif
