/* EXEC: join the main process's namespaces and root, as runc exec does.
 *
 * The agent opens /proc/<main>/ns/{pid,ipc,uts,mnt} and /proc/<main>/root,
 * enters the PID namespace itself for one fork (setns(CLONE_NEWPID) only moves
 * the caller's future children) and goes back to its own at once, so that the
 * process is a child of the agent (it reaps it) and a member of the container's
 * PID namespace. The child joins the IPC, UTS and mount namespaces and chroots
 * to the main process's root (the container's root filesystem, moved over "/"
 * there: container.c). */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"
#include "util.h"

enum { NS_IPC, NS_UTS, NS_MNT, NS_COUNT };

struct exec_ctx {
    int ns[NS_COUNT];
    int root;
};

static void exec_setup(void *ctx)
{
    const struct exec_ctx *x = ctx;
    static const int types[NS_COUNT] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNS};
    static const char *const names[NS_COUNT] = {"ipc", "uts", "mnt"};
    for (int i = 0; i < NS_COUNT; i++)
        if (setns(x->ns[i], types[i]) < 0)
            VMC_CHILD_SYSFAIL("setns", names[i]);
    if (fchdir(x->root) < 0 || chroot(".") < 0 || chdir("/") < 0)
        VMC_CHILD_SYSFAIL("chroot to the container's root", "/proc/<pid>/root");
    if (setsid() < 0)
        VMC_CHILD_SYSFAIL("setsid", "(process)");
}

int vmc_exec_start(pid_t main_pid, const struct vmc_process *p, struct vmc_spawned *st)
{
    static const char *const names[NS_COUNT] = {"ipc", "uts", "mnt"};
    struct exec_ctx x = {.ns = {-1, -1, -1}, .root = -1};
    int pidns = -1, own = -1, rc = 1;
    char path[64];
    memset(st, 0, sizeof *st);
    st->out_fd = st->err_fd = st->in_fd = st->pty_fd = -1;
    st->exit_code = VMC_EXIT_CANNOT_EXECUTE;
    for (int i = 0; i < NS_COUNT; i++) {
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)main_pid, names[i]);
        if ((x.ns[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            goto gone;
    }
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)main_pid);
    if ((pidns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        goto gone;
    snprintf(path, sizeof path, "/proc/%d/root", (int)main_pid);
    if ((x.root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        goto gone;
    if ((own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0 || setns(pidns, CLONE_NEWPID) < 0) {
        int e = errno;
        snprintf(st->message, sizeof st->message, "join the container's PID namespace: %s (errno %d)", strerror(e),
                 e);
        goto out;
    }
    rc = vmc_spawn(p, 0, exec_setup, &x, 0, st);
    if (setns(own, CLONE_NEWPID) < 0)
        vmc_error("setns back to the agent's PID namespace: %s (errno %d)", strerror(errno), errno);
    goto out;
gone:;
    int e = errno;
    snprintf(st->message, sizeof st->message, "container is not running: %s: %s (errno %d)", path, strerror(e), e);
out:
    for (int i = 0; i < NS_COUNT; i++)
        if (x.ns[i] >= 0)
            close(x.ns[i]);
    if (x.root >= 0)
        close(x.root);
    if (pidns >= 0)
        close(pidns);
    if (own >= 0)
        close(own);
    return rc;
}
