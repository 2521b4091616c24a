/* The init of `docker run --init` (as tini): PID 1 of the container's PID
 * namespace is this process, so that the real process gets the default action
 * of the signals it does not handle, and orphans are reaped. */
#include "init.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"

static void on_signal(int sig) { (void)sig; }

static void run_init(pid_t child) __attribute__((noreturn));
static void run_init(pid_t child)
{
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            (void)kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0)
                break;
            if (p == child)
                _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
}

void vmc_init_fork(int err_pipe)
{
    /* Signals are blocked before the fork (none is lost) and taken with
     * sigwaitinfo; a handler keeps them from being discarded as ignored. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &sa, NULL);
    pid_t pid = fork();
    if (pid < 0)
        VMC_CHILD_SYSFAIL("fork", "(init)");
    if (pid == 0)
        return;
    close(err_pipe);
#ifdef CLOSE_RANGE_UNSHARE
    (void)close_range(3, ~0U, 0);
#else
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
#endif
    run_init(pid);
}
