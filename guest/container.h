/* Start the container's process: PID 1 of new PID, mount, UTS and IPC
 * namespaces, inside the mounted root filesystem. */
#ifndef VMC_CONTAINER_H
#define VMC_CONTAINER_H

#include <sys/types.h>

#include "config.h"

/* Files the agent wrote, bind-mounted over the image's (NULL: leave the image's). */
struct vmc_etc_files {
    const char *hostname;    /* over /etc/hostname */
    const char *hosts;       /* over /etc/hosts */
    const char *resolv_conf; /* over /etc/resolv.conf */
};

struct vmc_start {
    pid_t pid;  /* in the agent's PID namespace */
    int out_fd; /* read ends of the process's stdout and stderr, O_NONBLOCK|O_CLOEXEC */
    int err_fd;
    int exit_code;     /* START_ERROR: 125, 126 or 127 */
    char message[1024]; /* START_ERROR: Docker's wording */
};

/* Fork the container's process and wait until execve succeeded or failed.
 * 0: started (pid, out_fd, err_fd); 1: start error (exit_code, message; the
 * child is reaped); -1: the agent itself failed (message). */
int vmc_container_start(const struct vmc_config *cfg, const char *newroot, const struct vmc_etc_files *etc,
                        struct vmc_start *st);

#endif
