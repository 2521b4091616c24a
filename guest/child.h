/* The forked side of starting a process (main or EXEC): user, working
 * directory, stdio, the optional init, execve. Start errors travel to the agent
 * through a CLOEXEC pipe as one struct vmc_child_error (EOF: execve succeeded). */
#ifndef VMC_CHILD_H
#define VMC_CHILD_H

#include <stdbool.h>

#include "config.h"

struct vmc_child_error {
    int exit_code;
    char message[1020];
};

/* The child's ends of its stdio, set up by spawn.c. */
struct vmc_child_io {
    int err_pipe; /* write end of the start-error pipe */
    int stdin_r;  /* read end of the stdin pipe, or -1 (/dev/null) */
    int out_w, err_w; /* stdout/stderr pipes (not used with a TTY) */
    int pty_sock; /* with a TTY: where the PTY master goes (SCM_RIGHTS) */
};

/* Where vmc_child_fail reports (set first thing in the child). */
void vmc_child_set_errfd(int fd);

/* Report a start error (exit code 125/126/127 and Docker's message) and _exit. */
void vmc_child_fail(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* A setup step failed: 125, naming the step, the path and errno. */
#define VMC_CHILD_SYSFAIL(step, path)                                                                              \
    do {                                                                                                           \
        int e_ = errno;                                                                                            \
        vmc_child_fail(VMC_EXIT_SETUP_FAILED, "%s %s: %s (errno %d)", step, path, strerror(e_), e_);               \
    } while (0)

/* In the container's root and namespaces: resolve the user, make and enter the
 * working directory, set up stdio (pipes or a PTY of /dev/pts), fork the init
 * when p->init, switch user and execve. `readonly_root` remounts / read-only
 * once the working directory exists. Never returns. */
void vmc_child_exec(const struct vmc_process *p, const struct vmc_child_io *io, bool readonly_root)
    __attribute__((noreturn));

#endif
