/* The container's process: namespaces, mounts, user, working directory, exec.
 *
 * The agent clones a child into new PID, mount, UTS and IPC namespaces. The
 * child makes the root filesystem its root (mount --move onto / and chroot:
 * pivot_root cannot leave the initramfs), mounts /proc, /sys, /dev, /dev/pts,
 * /dev/shm, binds the agent's hostname/hosts/resolv.conf files, switches user
 * and execs the process, which so becomes PID 1 of its namespace: the kernel
 * then drops signals it has no handler for, orphans re-parent to it, and when it
 * ends every other process of the namespace is killed.
 *
 * Start errors travel back through a CLOEXEC pipe: EOF means execve succeeded,
 * a struct child_error means it did not. */
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

#include "protocol.h"
#include "user.h"
#include "util.h"

struct child_error {
    int exit_code;
    char message[1020];
};

static int child_errfd = -1;

static void child_fail(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void child_fail(int code, const char *fmt, ...)
{
    struct child_error rec;
    memset(&rec, 0, sizeof rec);
    rec.exit_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec.message, sizeof rec.message, fmt, ap);
    va_end(ap);
    ssize_t r = write(child_errfd, &rec, sizeof rec); /* < PIPE_BUF: atomic */
    (void)r;
    _exit(code);
}

/* A setup step failed: 125, naming the step, the path and errno. */
#define CHILD_SYSFAIL(step, path)                                                                                  \
    do {                                                                                                           \
        int e_ = errno;                                                                                            \
        child_fail(VMC_EXIT_SETUP_FAILED, "%s %s: %s (errno %d)", step, path, strerror(e_), e_);                   \
    } while (0)

/* Docker CLI's mapping of a start error message to an exit code. */
static int exit_code_for(const char *msg)
{
    if (strstr(msg, "executable file not found") != NULL || strstr(msg, "no such file or directory") != NULL)
        return VMC_EXIT_NOT_FOUND;
    if (strstr(msg, "permission denied") != NULL || strstr(msg, "is a directory") != NULL)
        return VMC_EXIT_CANNOT_EXECUTE;
    return VMC_EXIT_SETUP_FAILED;
}

static void ensure_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        CHILD_SYSFAIL("create mount point", path);
}

static void do_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)
{
    if (mount(src, target, fstype, flags, data) < 0) {
        int e = errno;
        child_fail(VMC_EXIT_SETUP_FAILED, "mount %s (%s) on %s: %s (errno %d)", src, fstype ? fstype : "bind", target,
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
            CHILD_SYSFAIL("create symlink", links[i][1]);
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
            CHILD_SYSFAIL("create mount point", target);
        close(t);
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    do_mount(src, target, NULL, MS_BIND, NULL);
    close(fd);
}

/* Go's exec.findExecutable: 0 or an errno. */
static int find_executable(const char *file)
{
    struct stat st;
    if (stat(file, &st) < 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    if (faccessat(AT_FDCWD, file, X_OK, AT_EACCESS) == 0)
        return 0;
    int e = errno;
    if (e != ENOSYS && e != EPERM)
        return e;
    return (st.st_mode & 0111) ? 0 : EACCES;
}

/* Go's exec.LookPath with PATH from the process's environment, as runc does.
 * Returns the path to exec (malloc'd or arg0 itself); fails the child otherwise. */
static const char *look_path(const char *arg0, char *const *env)
{
    char es[128];
    if (strchr(arg0, '/') != NULL) {
        int e = find_executable(arg0);
        if (e == 0)
            return arg0;
        char msg[900];
        /* runc (Docker 20.10, the reference) reports a directory as EACCES. */
        if (e == EISDIR)
            e = EACCES;
        if (e == EACCES)
            snprintf(msg, sizeof msg, "exec: \"%s\": %s", arg0, vmc_strerror_go(e, es, sizeof es));
        else
            snprintf(msg, sizeof msg, "exec: \"%s\": stat %s: %s", arg0, arg0, vmc_strerror_go(e, es, sizeof es));
        child_fail(exit_code_for(msg), "%s", msg);
    }
    const char *path = "";
    for (char *const *p = env; *p != NULL; p++)
        if (strncmp(*p, "PATH=", 5) == 0)
            path = *p + 5; /* the last one wins, as with os.Setenv */
    size_t alen = strlen(arg0);
    const char *dir = path;
    while (*path != '\0') {
        const char *end = strchr(dir, ':');
        size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
        char *cand = malloc(dlen + alen + 3);
        if (cand == NULL)
            child_fail(VMC_EXIT_SETUP_FAILED, "out of memory looking up %s", arg0);
        if (dlen == 0)
            memcpy(cand, ".", 2);
        else {
            memcpy(cand, dir, dlen);
            cand[dlen] = '\0';
        }
        size_t cl = strlen(cand);
        while (cl > 1 && cand[cl - 1] == '/')
            cand[--cl] = '\0';
        if (cand[cl - 1] != '/')
            cand[cl++] = '/';
        memcpy(cand + cl, arg0, alen + 1);
        if (find_executable(cand) == 0)
            return cand;
        free(cand);
        if (end == NULL)
            break;
        dir = end + 1;
    }
    char msg[900];
    snprintf(msg, sizeof msg, "exec: \"%s\": executable file not found in $PATH", arg0);
    child_fail(VMC_EXIT_NOT_FOUND, "%s", msg);
}

struct child_args {
    const struct vmc_config *cfg;
    const char *newroot;
    const struct vmc_etc_files *etc;
    int out_w, err_w;
};

static void child_main(const struct child_args *a) __attribute__((noreturn));
static void child_main(const struct child_args *a)
{
    const struct vmc_config *cfg = a->cfg;
    char es[128], msg[900];
    umask(022);
    if (setsid() < 0)
        CHILD_SYSFAIL("setsid", "(process)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        CHILD_SYSFAIL("make mounts private:", "/");

    /* The agent's files, opened in this mount namespace (a bind mount's source
     * must be), before the initramfs goes out of reach. */
    const char *etc_src[3] = {a->etc->hostname, a->etc->hosts, a->etc->resolv_conf};
    static const char *const etc_dst[3] = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"};
    int etc_fd[3];
    for (int i = 0; i < 3; i++) {
        etc_fd[i] = -1;
        if (etc_src[i] != NULL && (etc_fd[i] = open(etc_src[i], O_PATH | O_CLOEXEC)) < 0)
            CHILD_SYSFAIL("open", etc_src[i]);
    }

    if (chdir(a->newroot) < 0)
        CHILD_SYSFAIL("chdir", a->newroot);
    if (mount(a->newroot, "/", NULL, MS_MOVE, NULL) < 0)
        CHILD_SYSFAIL("move mount to /:", a->newroot);
    if (chroot(".") < 0)
        CHILD_SYSFAIL("chroot", a->newroot);
    if (chdir("/") < 0)
        CHILD_SYSFAIL("chdir", "/");

    setup_mounts();
    for (int i = 0; i < 3; i++)
        bind_etc_file(etc_fd[i], etc_dst[i]);
    if (cfg->hostname != NULL && cfg->hostname[0] != '\0' && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
        CHILD_SYSFAIL("sethostname", cfg->hostname);

    struct vmc_user user;
    if (vmc_user_resolve(cfg->user, "/etc/passwd", "/etc/group", &user, msg, sizeof msg) < 0)
        child_fail(VMC_EXIT_SETUP_FAILED, "%s", msg);

    /* The working directory is created if missing (as Docker does), as root. */
    const char *failed_at = NULL;
    if (vmc_mkdir_p(cfg->cwd, 0755, &failed_at) < 0) {
        int e = errno;
        child_fail(VMC_EXIT_SETUP_FAILED, "mkdir %s (working directory %s): %s (errno %d)", failed_at, cfg->cwd,
                   strerror(e), e);
    }
    /* As runc: chdir before changing user, and again after when denied. */
    int chdir_later = 0;
    if (chdir(cfg->cwd) < 0) {
        if (errno != EACCES && errno != EPERM) {
            int e = errno;
            child_fail(VMC_EXIT_SETUP_FAILED, "chdir to cwd (\"%s\") set in config.json failed: %s", cfg->cwd,
                       vmc_strerror_go(e, es, sizeof es));
        }
        chdir_later = 1;
    }
    if (cfg->rootfs_readonly && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
        CHILD_SYSFAIL("remount read-only", "/");

    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
        CHILD_SYSFAIL("open", "/dev/null");
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(a->out_w, STDOUT_FILENO) < 0 || dup2(a->err_w, STDERR_FILENO) < 0)
        CHILD_SYSFAIL("dup2", "stdio");

    /* As runc: the primary group, then the groups of /etc/group listing the user. */
    gid_t groups[1024];
    size_t ngroups = 0;
    groups[ngroups++] = user.gid;
    for (size_t i = 0; i < user.nsgids && ngroups < sizeof groups / sizeof groups[0]; i++)
        if (user.sgids[i] != user.gid)
            groups[ngroups++] = user.sgids[i];
    if (setgroups(ngroups, groups) < 0)
        CHILD_SYSFAIL("setgroups", cfg->user);
    if (setgid(user.gid) < 0)
        CHILD_SYSFAIL("setgid", cfg->user);
    if (setuid(user.uid) < 0)
        CHILD_SYSFAIL("setuid", cfg->user);
    if (chdir_later && chdir(cfg->cwd) < 0) {
        int e = errno;
        child_fail(VMC_EXIT_SETUP_FAILED, "chdir to cwd (\"%s\") set in config.json failed: %s", cfg->cwd,
                   vmc_strerror_go(e, es, sizeof es));
    }

    char **env = cfg->env; /* config.c left one spare slot for HOME */
    size_t n = 0;
    int has_home = 0;
    for (; env[n] != NULL; n++)
        if (strncmp(env[n], "HOME=", 5) == 0)
            has_home = 1;
    if (!has_home) {
        char *home = malloc(strlen(user.home) + 6);
        if (home == NULL)
            child_fail(VMC_EXIT_SETUP_FAILED, "out of memory setting HOME");
        strcpy(home, "HOME=");
        strcat(home, user.home);
        env[n] = home;
        env[n + 1] = NULL;
    }

    const char *exe = look_path(cfg->args[0], env);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        (void)sigaction(s, &sa, NULL); /* SIGKILL, SIGSTOP and glibc's own fail: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
#ifdef CLOSE_RANGE_CLOEXEC
    (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif

    execve(exe, cfg->args, env);
    int e = errno;
    snprintf(msg, sizeof msg, "exec %s: %s", exe, vmc_strerror_go(e, es, sizeof es));
    int code = exit_code_for(msg);
    if (e == ENOEXEC || e == ETXTBSY || e == EPERM || e == ELIBBAD)
        code = VMC_EXIT_CANNOT_EXECUTE;
    child_fail(code, "%s", msg);
}

int vmc_container_start(const struct vmc_config *cfg, const char *newroot, const struct vmc_etc_files *etc,
                        struct vmc_start *st)
{
    memset(st, 0, sizeof *st);
    st->out_fd = st->err_fd = -1;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, errpipe[2] = {-1, -1};
    if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(st->message, sizeof st->message, "pipe2: %s (errno %d)", strerror(e), e);
        goto fail_agent;
    }

    struct child_args a = {.cfg = cfg, .newroot = newroot, .etc = etc, .out_w = out_p[1], .err_w = err_p[1]};
    /* fork() into new namespaces: a raw clone without a new stack behaves as fork
     * (single-threaded agent, nothing for glibc's atfork handlers to do). */
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, NULL,
                               NULL, NULL, 0);
    if (pid < 0) {
        int e = errno;
        snprintf(st->message, sizeof st->message, "clone (new pid, mount, uts, ipc namespaces): %s (errno %d)",
                 strerror(e), e);
        goto fail_agent;
    }
    if (pid == 0) {
        close(errpipe[0]);
        close(out_p[0]);
        close(err_p[0]);
        child_errfd = errpipe[1];
        child_main(&a);
    }
    close(errpipe[1]);
    close(out_p[1]);
    close(err_p[1]);
    errpipe[1] = out_p[1] = err_p[1] = -1;

    struct child_error rec;
    size_t got = 0;
    while (got < sizeof rec) {
        ssize_t r = read(errpipe[0], (char *)&rec + got, sizeof rec - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(errpipe[0]);
    errpipe[0] = -1;
    if (got == 0) { /* EOF: execve succeeded */
        st->pid = pid;
        st->out_fd = out_p[0];
        st->err_fd = err_p[0];
        fcntl(st->out_fd, F_SETFL, O_NONBLOCK);
        fcntl(st->err_fd, F_SETFL, O_NONBLOCK);
        return 0;
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
    close(out_p[0]);
    close(err_p[0]);
    return 1;

fail_agent:
    for (int i = 0; i < 2; i++) {
        if (out_p[i] >= 0)
            close(out_p[i]);
        if (err_p[i] >= 0)
            close(err_p[i]);
        if (errpipe[i] >= 0)
            close(errpipe[i]);
    }
    st->exit_code = VMC_EXIT_SETUP_FAILED;
    return -1;
}
