/* The container's process: namespaces, mounts, user, working directory, exec.
 *
 * The agent clones a child into new PID, mount, UTS and IPC namespaces. The
 * child makes the root filesystem its root (mount --move onto / and chroot:
 * pivot_root cannot leave the initramfs), mounts /proc, /sys, /dev, /dev/pts,
 * /dev/shm, binds the agent's hostname/hosts/resolv.conf files, switches user
 * and execs the process (child.c), which so becomes PID 1 of its namespace
 * (unless process.init: then the agent's init is): the kernel then drops signals
 * it has no handler for, orphans re-parent to it, and when it ends every other
 * process of the namespace is killed. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "mounts.h"
#include "protocol.h"
#include "spawn.h"
#include "util.h"

static void ensure_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        VMC_CHILD_SYSFAIL("create mount point", path);
}

static void do_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)
{
    if (mount(src, target, fstype, flags, data) < 0) {
        int e = errno;
        vmc_child_fail(VMC_EXIT_SETUP_FAILED, "mount %s (%s) on %s: %s (errno %d)", src, fstype ? fstype : "bind", target,
                   strerror(e), e);
    }
}

static void setup_mounts(void)
{
    ensure_dir("/proc", 0555);
    do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    ensure_dir("/sys", 0555);
    do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
    ensure_dir("/dev", 0755);
    do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
    ensure_dir("/dev/pts", 0755);
    do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    ensure_dir("/dev/shm", 01777);
    do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    /* As Docker: a mqueue of the new IPC namespace; a kernel without one is fine. */
    if (mkdir("/dev/mqueue", 0755) == 0 || errno == EEXIST)
        (void)mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},       {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"}, {"/proc/kcore", "/dev/core"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            VMC_CHILD_SYSFAIL("create symlink", links[i][1]);
}

/* Bind the file open as fd over target (created, and /etc, when missing). */
static void bind_etc_file(int fd, const char *target)
{
    if (fd < 0)
        return;
    ensure_dir("/etc", 0755);
    struct stat st;
    if (stat(target, &st) < 0) {
        int t = open(target, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (t < 0)
            VMC_CHILD_SYSFAIL("create mount point", target);
        close(t);
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    do_mount(src, target, NULL, MS_BIND, NULL);
    close(fd);
}

struct child_args {
    const struct vmc_config *cfg;
    const char *newroot;
    const struct vmc_etc_files *etc;
};

/* In the child, in its new namespaces: the root filesystem as root, the
 * container's mounts and files, the hostname. */
static void child_setup(void *ctx)
{
    const struct child_args *a = ctx;
    const struct vmc_config *cfg = a->cfg;
    umask(022);
    if (setsid() < 0)
        VMC_CHILD_SYSFAIL("setsid", "(process)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        VMC_CHILD_SYSFAIL("make mounts private:", "/");

    /* The agent's files, opened in this mount namespace (a bind mount's source
     * must be), before the initramfs goes out of reach. */
    const char *etc_src[3] = {a->etc->hostname, a->etc->hosts, a->etc->resolv_conf};
    static const char *const etc_dst[3] = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"};
    int etc_fd[3];
    for (int i = 0; i < 3; i++) {
        etc_fd[i] = -1;
        if (etc_src[i] != NULL && (etc_fd[i] = open(etc_src[i], O_PATH | O_CLOEXEC)) < 0)
            VMC_CHILD_SYSFAIL("open", etc_src[i]);
    }

    vmc_mounts_prepare(cfg->mounts, cfg->nmounts);
    if (chdir(a->newroot) < 0)
        VMC_CHILD_SYSFAIL("chdir", a->newroot);
    if (mount(a->newroot, "/", NULL, MS_MOVE, NULL) < 0)
        VMC_CHILD_SYSFAIL("move mount to /:", a->newroot);
    if (chroot(".") < 0)
        VMC_CHILD_SYSFAIL("chroot", a->newroot);
    if (chdir("/") < 0)
        VMC_CHILD_SYSFAIL("chdir", "/");

    setup_mounts();
    for (int i = 0; i < 3; i++)
        bind_etc_file(etc_fd[i], etc_dst[i]);
    vmc_mounts_apply(cfg->mounts, cfg->nmounts);
    if (cfg->hostname != NULL && cfg->hostname[0] != '\0' && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
        VMC_CHILD_SYSFAIL("sethostname", cfg->hostname);
}

int vmc_container_start(const struct vmc_config *cfg, const char *newroot, const struct vmc_etc_files *etc,
                        struct vmc_spawned *st)
{
    struct child_args a = {.cfg = cfg, .newroot = newroot, .etc = etc};
    return vmc_spawn(&cfg->process, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC, child_setup, &a,
                     cfg->rootfs_readonly, st);
}
