/* Start the container's process: PID 1 of new PID, mount, UTS and IPC
 * namespaces, inside the mounted root filesystem. */
#ifndef VMC_CONTAINER_H
#define VMC_CONTAINER_H

#include <sys/types.h>

#include "config.h"
#include "spawn.h"

/* Files the agent wrote, bind-mounted over the image's (NULL: leave the image's). */
struct vmc_etc_files {
    const char *hostname;    /* over /etc/hostname */
    const char *hosts;       /* over /etc/hosts */
    const char *resolv_conf; /* over /etc/resolv.conf */
};

/* Fork the container's process and wait until execve succeeded or failed
 * (vmc_spawn's results). */
int vmc_container_start(const struct vmc_config *cfg, const char *newroot, const struct vmc_etc_files *etc,
                        struct vmc_spawned *st);

#endif
