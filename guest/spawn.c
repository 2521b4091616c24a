/* The agent's side of starting a process: pipes (stdout, stderr, stdin), the
 * PTY socket, the start-error pipe; fork; then wait for EOF on the error pipe
 * (execve succeeded) or a struct vmc_child_error. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol.h"
#include "tty.h"

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int vmc_spawn(const struct vmc_process *p, unsigned long clone_flags, vmc_child_setup setup, void *ctx,
              int readonly_root, struct vmc_spawned *st)
{
    memset(st, 0, sizeof *st);
    st->out_fd = st->err_fd = st->in_fd = st->pty_fd = -1;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, in_p[2] = {-1, -1}, errpipe[2] = {-1, -1}, sock[2] = {-1, -1};
    int rc = -1;
    if (pipe2(errpipe, O_CLOEXEC) < 0 || (!p->tty && (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0)) ||
        (p->stdin && !p->tty && pipe2(in_p, O_CLOEXEC) < 0) ||
        (p->tty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0)) {
        int e = errno;
        snprintf(st->message, sizeof st->message, "pipe2: %s (errno %d)", strerror(e), e);
        goto out;
    }
    /* fork(), optionally into new namespaces: a raw clone without a new stack
     * behaves as fork (single-threaded agent, nothing for atfork handlers). */
    pid_t pid = (pid_t)syscall(SYS_clone, clone_flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid < 0) {
        int e = errno;
        snprintf(st->message, sizeof st->message, "clone: %s (errno %d)", strerror(e), e);
        goto out;
    }
    if (pid == 0) {
        close(errpipe[0]);
        close(out_p[0]);
        close(err_p[0]);
        close(in_p[1]);
        close(sock[0]);
        struct vmc_child_io io = {
            .err_pipe = errpipe[1], .stdin_r = in_p[0], .out_w = out_p[1], .err_w = err_p[1], .pty_sock = sock[1]};
        /* vmc_child_fail needs the pipe during setup too: vmc_child_exec sets
         * it, so setup reports through a first call. */
        vmc_child_set_errfd(errpipe[1]);
        if (setup != NULL)
            setup(ctx);
        vmc_child_exec(p, &io, readonly_root);
    }
    close_fd(&errpipe[1]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&in_p[0]);
    close_fd(&sock[1]);

    struct vmc_child_error rec;
    size_t got = 0;
    while (got < sizeof rec) {
        ssize_t r = read(errpipe[0], (char *)&rec + got, sizeof rec - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == 0) { /* EOF: execve succeeded */
        st->pid = pid;
        if (p->tty) {
            int master = vmc_tty_recv_master(sock[0]);
            if (master < 0 || (st->pty_fd = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0) {
                /* Cannot happen once the child sent it; the process runs without
                 * its terminal's master: kill it rather than leave it hanging. */
                int e = errno;
                snprintf(st->message, sizeof st->message, "receive the terminal master: %s (errno %d)", strerror(e), e);
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                    ;
                if (master >= 0)
                    close(master);
                goto out;
            }
            st->out_fd = master;
        } else {
            st->out_fd = out_p[0];
            st->err_fd = err_p[0];
            st->in_fd = in_p[1];
            out_p[0] = err_p[0] = in_p[1] = -1;
        }
        int fds[4] = {st->out_fd, st->err_fd, st->in_fd, st->pty_fd};
        for (int i = 0; i < 4; i++)
            if (fds[i] >= 0)
                fcntl(fds[i], F_SETFL, O_NONBLOCK);
        rc = 0;
        goto out;
    }
    if (got == sizeof rec) {
        rec.message[sizeof rec.message - 1] = '\0';
        st->exit_code = rec.exit_code;
        snprintf(st->message, sizeof st->message, "%s", rec.message);
    } else {
        st->exit_code = VMC_EXIT_SETUP_FAILED;
        snprintf(st->message, sizeof st->message, "container process setup ended early (%zu bytes of error)", got);
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    rc = 1;
out:
    if (rc < 0)
        st->exit_code = VMC_EXIT_SETUP_FAILED;
    int *all[] = {&out_p[0], &out_p[1], &err_p[0], &err_p[1], &in_p[0], &in_p[1], &errpipe[0], &errpipe[1], &sock[0], &sock[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        close_fd(all[i]);
    return rc;
}
