/* The agent's side of starting a process (main or EXEC). */
#ifndef VMC_SPAWN_H
#define VMC_SPAWN_H

#include <sys/types.h>

#include "child.h"
#include "config.h"

struct vmc_spawned {
    pid_t pid;  /* in the agent's PID namespace */
    int out_fd; /* read ends of stdout and stderr (with a TTY: out_fd is the master, err_fd -1) */
    int err_fd;
    int in_fd;  /* write end of the stdin pipe (process.stdin), or -1 */
    int pty_fd; /* the PTY master (a second fd), or -1 */
    int exit_code;      /* start error: 125, 126 or 127 */
    char message[1024]; /* start error: Docker's wording */
};

/* Runs first in the forked child (namespaces, root); fails with vmc_child_fail. */
typedef void (*vmc_child_setup)(void *ctx);

/* Fork (clone with clone_flags, e.g. new namespaces), run setup(ctx) then
 * vmc_child_exec in the child, and wait until execve succeeded or failed.
 * 0: started (every fd O_NONBLOCK|O_CLOEXEC); 1: start error (exit_code,
 * message; the child is reaped); -1: the agent itself failed (message). */
int vmc_spawn(const struct vmc_process *p, unsigned long clone_flags, vmc_child_setup setup, void *ctx,
              int readonly_root, struct vmc_spawned *out);

#endif
