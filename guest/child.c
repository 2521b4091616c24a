/* The forked side of starting a process: user, working directory, stdio (pipes
 * or a PTY), the optional init, execve. Shared by the main process (after
 * container.c made the namespaces and mounts) and EXEC (after exec.c joined
 * them). Messages and exit codes are Docker's (runc's). */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"
#include "protocol.h"
#include "tty.h"
#include "user.h"
#include "util.h"

static int child_errfd = -1;

void vmc_child_set_errfd(int fd) { child_errfd = fd; }

void vmc_child_fail(int code, const char *fmt, ...)
{
    struct vmc_child_error rec;
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

/* Docker CLI's mapping of a start error message to an exit code. */
static int exit_code_for(const char *msg)
{
    if (strstr(msg, "executable file not found") != NULL || strstr(msg, "no such file or directory") != NULL)
        return VMC_EXIT_NOT_FOUND;
    if (strstr(msg, "permission denied") != NULL || strstr(msg, "is a directory") != NULL)
        return VMC_EXIT_CANNOT_EXECUTE;
    return VMC_EXIT_SETUP_FAILED;
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
        vmc_child_fail(exit_code_for(msg), "%s", msg);
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
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "out of memory looking up %s", arg0);
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
    vmc_child_fail(VMC_EXIT_NOT_FOUND, "%s", msg);
}

static void chdir_cwd(const char *cwd)
{
    char es[128];
    int e = errno;
    vmc_child_fail(VMC_EXIT_SETUP_FAILED, "chdir to cwd (\"%s\") set in config.json failed: %s", cwd,
                   vmc_strerror_go(e, es, sizeof es));
}

/* stdin, stdout, stderr of the process; with a TTY the slave becomes the
 * controlling terminal (the caller leads a session without one). */
static void setup_stdio(const struct vmc_process *p, const struct vmc_child_io *io, int slave)
{
    int in = slave, out = io->out_w, err = io->err_w;
    if (slave >= 0) {
        if (ioctl(slave, TIOCSCTTY, 0) < 0)
            VMC_CHILD_SYSFAIL("set controlling terminal", "(TIOCSCTTY)");
        out = err = slave;
    } else if (p->stdin && io->stdin_r >= 0) {
        in = io->stdin_r;
    } else if ((in = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        VMC_CHILD_SYSFAIL("open", "/dev/null");
    }
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
        VMC_CHILD_SYSFAIL("dup2", "stdio");
}

void vmc_child_exec(const struct vmc_process *p, const struct vmc_child_io *io, bool readonly_root)
{
    char es[128], msg[900];
    child_errfd = io->err_pipe;
    if (io->pty_sock < 0 && p->tty)
        vmc_child_fail(VMC_EXIT_SETUP_FAILED, "no terminal socket");
    umask(022);

    struct vmc_user user;
    if (vmc_user_resolve(p->user, "/etc/passwd", "/etc/group", &user, msg, sizeof msg) < 0)
        vmc_child_fail(VMC_EXIT_SETUP_FAILED, "%s", msg);

    /* The main process's working directory is created if missing (as Docker
     * does), as root; an exec's is not (Docker's exec fails to chdir). */
    const char *failed_at = NULL;
    if (p->make_cwd && vmc_mkdir_p(p->cwd, 0755, &failed_at) < 0) {
        int e = errno;
        vmc_child_fail(VMC_EXIT_SETUP_FAILED, "mkdir %s (working directory %s): %s (errno %d)", failed_at, p->cwd,
                       strerror(e), e);
    }
    /* As runc: chdir before changing user, and again after when denied. */
    int chdir_later = 0;
    if (chdir(p->cwd) < 0) {
        if (errno != EACCES && errno != EPERM)
            chdir_cwd(p->cwd);
        chdir_later = 1;
    }
    if (readonly_root && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
        VMC_CHILD_SYSFAIL("remount read-only", "/");

    int slave = -1;
    if (p->tty && (slave = vmc_tty_open(io->pty_sock, p->rows, p->cols, user.uid)) < 0)
        VMC_CHILD_SYSFAIL("allocate a terminal in", "/dev/pts/ptmx");

    if (p->init) {
        /* This process stays PID 1 of the namespace; the process runs as its
         * child, in a session of its own (so that it may own the terminal). */
        vmc_init_fork(child_errfd);
        if (setsid() < 0)
            VMC_CHILD_SYSFAIL("setsid", "(process)");
    }
    setup_stdio(p, io, slave);

    /* As runc: the primary group, then the groups of /etc/group listing the user. */
    gid_t groups[1024];
    size_t ngroups = 0;
    groups[ngroups++] = user.gid;
    for (size_t i = 0; i < user.nsgids && ngroups < sizeof groups / sizeof groups[0]; i++)
        if (user.sgids[i] != user.gid)
            groups[ngroups++] = user.sgids[i];
    /* Then Docker's GroupAdd (names from the image's /etc/group). */
    for (char **g = p->groups; g != NULL && *g != NULL && ngroups < sizeof groups / sizeof groups[0]; g++)
        if (vmc_group_resolve(*g, "/etc/group", &groups[ngroups++], msg, sizeof msg) < 0)
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "%s", msg);
    if (setgroups(ngroups, groups) < 0)
        VMC_CHILD_SYSFAIL("setgroups", p->user);
    if (setgid(user.gid) < 0)
        VMC_CHILD_SYSFAIL("setgid", p->user);
    if (setuid(user.uid) < 0)
        VMC_CHILD_SYSFAIL("setuid", p->user);
    if (chdir_later && chdir(p->cwd) < 0)
        chdir_cwd(p->cwd);

    char **env = p->env; /* config.c left one spare slot for HOME */
    size_t n = 0;
    int has_home = 0;
    for (; env[n] != NULL; n++)
        if (strncmp(env[n], "HOME=", 5) == 0)
            has_home = 1;
    if (!has_home) {
        char *home = malloc(strlen(user.home) + 6);
        if (home == NULL)
            vmc_child_fail(VMC_EXIT_SETUP_FAILED, "out of memory setting HOME");
        strcpy(home, "HOME=");
        strcat(home, user.home);
        env[n] = home;
        env[n + 1] = NULL;
    }

    const char *exe = look_path(p->args[0], env);

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

    execve(exe, p->args, env);
    int e = errno;
    snprintf(msg, sizeof msg, "exec %s: %s", exe, vmc_strerror_go(e, es, sizeof es));
    int code = exit_code_for(msg);
    if (e == ENOEXEC || e == ETXTBSY || e == EPERM || e == ELIBBAD)
        code = VMC_EXIT_CANNOT_EXECUTE;
    vmc_child_fail(code, "%s", msg);
}
