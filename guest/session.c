/* Sessions and the agent's event loop while the container runs.
 *
 * One poll() over the signalfd (SIGCHLD), the port, and for every session its
 * stdout/stderr (or PTY master) and, while it has bytes waiting, its stdin. A
 * session's stdin is buffered (never a blocking write to a process); above
 * VMC_STDIN_BOUND bytes in one session the port is not read until it drains.
 * An EXEC session ends with EXIT once its process was reaped and its output
 * reached EOF; the main session ends last (its EXIT is the caller's).
 * One file (~480 lines) for one reason: the session table is this loop's own
 * static state, and every frame handler below adds to it or looks in it. */
#include "session.h"
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "channel.h"
#include "config.h"
#include "exec.h"
#include "protocol.h"
#include "replay.h"
#include "reply.h"
#include "top.h"
#include "tty.h"
#include "util.h"

#define OUTPUT_CHUNK 65536

struct session {
    uint16_t id;
    pid_t pid;
    bool exited, stdin_open, stdin_eof; /* stdin_eof: close stdin once the buffer drained */
    bool archive; /* an ARCHIVE worker: its stderr goes out as ARCHIVE_INFO */
    int status;
    int out_fd, err_fd, in_fd, pty_fd;
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    struct session *next;
};

static struct vmc_channel *chan;
static int sig_fd = -1;
static struct session *sessions; /* the main session is the last */
static pid_t main_pid;
static bool main_running;
static bool maintenance; /* no container process: ARCHIVE only (vmc_sessions_serve_maintenance) */
static const char *rootfs_path = "/";

void vmc_sessions_set_rootfs(const char *path) { rootfs_path = path; }

void vmc_sessions_init(struct vmc_channel *ch, int fd)
{
    chan = ch;
    sig_fd = fd;
    vmc_replay_init(ch);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static struct session *find(uint16_t id)
{
    for (struct session *s = sessions; s != NULL; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static struct session *add(uint16_t id, const struct vmc_spawned *st, bool stdin_open)
{
    struct session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->id = id;
    s->pid = st->pid;
    s->out_fd = st->out_fd;
    s->err_fd = st->err_fd;
    s->in_fd = st->in_fd;
    s->pty_fd = st->pty_fd;
    s->stdin_open = stdin_open && (s->in_fd >= 0 || s->pty_fd >= 0);
    s->next = sessions;
    sessions = s;
    return s;
}

static void drop(struct session *s)
{
    for (struct session **p = &sessions; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    close_fd(&s->out_fd);
    close_fd(&s->err_fd);
    close_fd(&s->in_fd);
    close_fd(&s->pty_fd);
    free(s->in);
    free(s);
}

/* An integer member of a JSON payload; false when absent or not an integer. */
static bool json_int(const uint8_t *payload, size_t len, const char *key, int *out)
{
    json_object *obj = vmc_json_parse(payload, len), *v;
    bool ok = obj != NULL && json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_int);
    if (ok)
        *out = json_object_get_int(v);
    json_object_put(obj);
    return ok;
}

static void on_exec(uint16_t id, const uint8_t *payload, size_t len)
{
    char err[1024];
    if (!main_running) {
        vmc_send_start_error(id, VMC_EXIT_CANNOT_EXECUTE, "container is not running");
        return;
    }
    if (id == VMC_MAIN_SESSION || find(id) != NULL) {
        snprintf(err, sizeof err, "session %u is in use", id);
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, err);
        return;
    }
    json_object *obj = vmc_json_parse(payload, len);
    struct vmc_process p;
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, "EXEC: not a JSON object");
        return;
    }
    int rc = vmc_process_parse(obj, "exec", &p, err, sizeof err);
    json_object_put(obj);
    if (rc < 0) {
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, err);
        return;
    }
    p.init = false;
    struct vmc_spawned st;
    rc = vmc_exec_start(main_pid, &p, &st);
    bool want_stdin = p.stdin;
    vmc_process_free(&p);
    if (rc != 0) {
        vmc_send_start_error(id, st.exit_code, st.message);
        return;
    }
    if (add(id, &st, want_stdin) == NULL) {
        vmc_error("out of memory for session %u: killing its process", id);
        kill(st.pid, SIGKILL); /* reaped as an unknown child */
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, "out of memory");
        return;
    }
    json_object *started = json_object_new_object();
    json_object_object_add(started, "pid", json_object_new_int(st.pid));
    vmc_send_json(VMC_MSG_STARTED, id, started);
}

static void on_archive(uint16_t id, const uint8_t *payload, size_t len)
{
    char err[64];
    if (!main_running && !maintenance) {
        vmc_send_start_error(id, VMC_EXIT_CANNOT_EXECUTE, "container is not running");
        return;
    }
    if (id == VMC_MAIN_SESSION || find(id) != NULL) {
        snprintf(err, sizeof err, "session %u is in use", id);
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, err);
        return;
    }
    json_object *req = vmc_json_parse(payload, len);
    if (req == NULL || !json_object_is_type(req, json_type_object)) {
        json_object_put(req);
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, "ARCHIVE: not a JSON object");
        return;
    }
    struct vmc_spawned st;
    int rc = vmc_archive_start(req, maintenance ? 0 : main_pid, rootfs_path, &st);
    json_object_put(req);
    if (rc != 0) {
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, st.message);
        return;
    }
    struct session *s = add(id, &st, true);
    if (s == NULL) {
        kill(st.pid, SIGKILL);
        close(st.out_fd);
        close(st.err_fd);
        close(st.in_fd);
        vmc_send_start_error(id, VMC_EXIT_SETUP_FAILED, "out of memory");
        return;
    }
    s->archive = true;
    json_object *started = json_object_new_object();
    json_object_object_add(started, "pid", json_object_new_int(st.pid));
    vmc_send_json(VMC_MSG_STARTED, id, started);
}

static void on_stdin(struct session *s, const uint8_t *payload, size_t len)
{
    uint8_t eof;
    if (!s->stdin_open || s->exited)
        return;
    if (len == 0) {
        if (s->pty_fd < 0) {
            s->stdin_eof = true;
            s->stdin_open = false;
            return;
        }
        eof = (uint8_t)vmc_tty_eof_char(s->pty_fd); /* the terminal's EOF; nothing closes */
        payload = &eof;
        len = 1;
    }
    if (s->in_len + len > s->in_cap) {
        if (s->in_off > 0) {
            memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
            s->in_len -= s->in_off;
            s->in_off = 0;
        }
        size_t cap = s->in_cap ? s->in_cap : 65536;
        while (cap < s->in_len + len)
            cap *= 2;
        uint8_t *n = cap > s->in_cap ? realloc(s->in, cap) : s->in;
        if (n == NULL) {
            vmc_error("out of memory buffering stdin of session %u: dropped %zu bytes", s->id, len);
            return;
        }
        s->in = n;
        s->in_cap = cap;
    }
    memcpy(s->in + s->in_len, payload, len);
    s->in_len += len;
}

void vmc_session_on_frame(void *ctx, uint8_t type, uint16_t id, const uint8_t *payload, size_t len)
{
    (void)ctx;
    if (type == VMC_MSG_EXEC) {
        on_exec(id, payload, len);
        return;
    }
    if (type == VMC_MSG_SYNC) {
        /* The host is about to end the VM without the process's consent (stop
         * timeout, SIGKILL, rm -f): what was written must reach the disks and
         * shares first, as it would sit in the host's page cache under Docker. */
        sync();
        vmc_send_json(VMC_MSG_SYNCED, id, json_object_new_object());
        return;
    }
    if (type == VMC_MSG_ARCHIVE) {
        on_archive(id, payload, len);
        return;
    }
    if (type == VMC_MSG_TOP) {
        json_object *top = vmc_top();
        if (top != NULL)
            vmc_send_json(VMC_MSG_PROCESSES, id, top);
        return;
    }
    if (type == VMC_MSG_NET_CONFIG) {
        vmc_net_on_config(id, payload, len);
        return;
    }
    if (type == VMC_MSG_NET_RELEASE) {
        vmc_net_on_release(id, payload, len);
        return;
    }
    if (type == VMC_MSG_ACK) {
        vmc_replay_on_ack(payload, len);
        return;
    }
    if (type == VMC_MSG_RESUME) {
        vmc_replay_on_resume(payload, len);
        return;
    }
    struct session *s = find(id);
    if (s == NULL || s->exited)
        return;
    int n, rows, cols;
    if (type == VMC_MSG_SIGNAL) {
        if (!json_int(payload, len, "signal", &n))
            vmc_error("%s", "host sent a SIGNAL frame without an integer \"signal\"");
        else if (n > 0 && n < NSIG && kill(s->pid, n) < 0)
            vmc_error("kill %d with signal %d: %s (errno %d)", (int)s->pid, n, strerror(errno), errno);
    } else if (type == VMC_MSG_STDIN) {
        on_stdin(s, payload, len);
    } else if (type == VMC_MSG_RESIZE && s->pty_fd >= 0) {
        if (json_int(payload, len, "rows", &rows) && json_int(payload, len, "cols", &cols) && rows >= 0 &&
            cols >= 0 && rows <= 65535 && cols <= 65535 && vmc_tty_resize(s->pty_fd, rows, cols) < 0)
            vmc_error("resize session %u: %s (errno %d)", id, strerror(errno), errno);
    }
}

/* Reap every zombie; record the status of sessions' processes. */
static void reap(void)
{
    struct signalfd_siginfo si[8];
    while (sig_fd >= 0 && read(sig_fd, si, sizeof si) > 0)
        ;
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p <= 0)
            return;
        for (struct session *s = sessions; s != NULL; s = s->next)
            if (s->pid == p && !s->exited) {
                s->exited = true;
                s->status = status;
                if (p == main_pid)
                    main_running = false;
            }
    }
}

/* Read what fd holds into one frame. false at EOF or error (a PTY master
 * reads EIO once every slave is closed: EOF). */
static bool forward(struct session *s, int fd, uint8_t type)
{
    static char buf[OUTPUT_CHUNK];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            if (s->id == VMC_MAIN_SESSION)
                vmc_replay_send(type, buf, (size_t)n); /* kept until the host stored it */
            else
                vmc_channel_send(chan, type, s->id, buf, (size_t)n);
            return true;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0 && !(errno == EIO && s->pty_fd >= 0))
            vmc_error("read output of session %u: %s (errno %d)", s->id, strerror(errno), errno);
        return false;
    }
}

/* Write what the process's stdin takes now; close it at the end when asked. */
static void feed(struct session *s)
{
    int fd = s->pty_fd >= 0 ? s->pty_fd : s->in_fd;
    while (s->in_off < s->in_len) {
        ssize_t n = write(fd, s->in + s->in_off, s->in_len - s->in_off);
        if (n > 0) {
            s->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EPIPE: the process closed its stdin (or ended): the rest is dropped. */
        s->in_off = s->in_len;
        s->stdin_open = false;
        s->stdin_eof = s->pty_fd < 0;
    }
    s->in_off = s->in_len = 0;
    if (s->stdin_eof)
        close_fd(&s->in_fd);
}

static size_t pending(const struct session *s) { return s->in_len - s->in_off; }

/* Close sessions that are over: EXEC sessions get their EXIT. true when only
 * the main session is left and it is over too. */
static bool close_finished(struct session *main_s)
{
    for (struct session *s = sessions, *next; s != NULL; s = next) {
        next = s->next;
        if (s == main_s || !s->exited || s->out_fd >= 0 || s->err_fd >= 0)
            continue;
        vmc_send_json(VMC_MSG_EXIT, s->id, vmc_exit_json(s->status, 0));
        drop(s);
    }
    return main_s != NULL && sessions == main_s && main_s->exited && main_s->out_fd < 0 && main_s->err_fd < 0;
}

static void serve(struct session *m)
{
    bool host_gone = false;
    int64_t host_retry = 0;
    struct pollfd *p = NULL;
    struct session **who = NULL;
    size_t cap = 0;
    while (!close_finished(m)) {
        size_t n = 0, count = 0;
        bool full = false;
        for (struct session *s = sessions; s != NULL; s = s->next, count++)
            full = full || pending(s) >= VMC_STDIN_BOUND;
        if (2 + 3 * count > cap) {
            cap = 2 + 3 * count + 16;
            p = realloc(p, cap * sizeof *p);
            who = realloc(who, cap * sizeof *who);
            if (p == NULL || who == NULL) {
                vmc_error("%s", "out of memory for poll");
                abort();
            }
        }
        if (host_gone && vmc_now_ms() >= host_retry)
            host_gone = false;
        p[n++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
        /* While the host is not connected the port polls readable and hung up:
         * look again in a second rather than spin. */
        p[n++] = (struct pollfd){.fd = host_gone || full ? -1 : vmc_channel_fd(chan), .events = POLLIN};
        for (struct session *s = sessions; s != NULL; s = s->next) {
            int in = s->pty_fd >= 0 ? s->pty_fd : s->in_fd;
            who[n] = s;
            p[n++] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
            who[n] = s;
            p[n++] = (struct pollfd){.fd = s->err_fd, .events = POLLIN};
            who[n] = s;
            p[n++] = (struct pollfd){.fd = pending(s) > 0 || s->stdin_eof ? in : -1, .events = POLLOUT};
        }
        int timeout = host_gone ? 1000 : -1;
        if (sig_fd < 0)
            timeout = 100; /* no signalfd: look for the process's end now and then */
        int r = poll(p, n, timeout);
        if (r < 0) {
            if (errno != EINTR) {
                vmc_error("poll: %s (errno %d)", strerror(errno), errno);
                vmc_sleep_ms(10);
            }
            continue;
        }
        if ((p[0].revents & POLLIN) || sig_fd < 0)
            reap();
        /* Output before input: frames handled below may add or drop sessions. */
        for (size_t i = 2; i < n; i += 3) {
            struct session *s = who[i];
            if (p[i].revents && s->out_fd >= 0 && !forward(s, s->out_fd, VMC_MSG_STDOUT))
                close_fd(&s->out_fd);
            if (p[i + 1].revents && s->err_fd >= 0 &&
                !forward(s, s->err_fd, s->archive ? VMC_MSG_ARCHIVE_INFO : VMC_MSG_STDERR))
                close_fd(&s->err_fd);
            if (p[i + 2].revents)
                feed(s);
        }
        if (p[1].revents && vmc_channel_read_input(chan, vmc_session_on_frame, NULL) <= 0) {
            host_gone = true;
            host_retry = vmc_now_ms() + 1000;
        }
    }
    free(p);
    free(who);
}

int vmc_sessions_serve(const struct vmc_spawned *st, int stdin_open)
{
    main_pid = st->pid;
    main_running = true;
    struct session *m = add(VMC_MAIN_SESSION, st, stdin_open);
    if (m == NULL) {
        vmc_error("%s", "out of memory for the main session");
        abort();
    }
    serve(m);
    int status = m->status;
    drop(m);
    return status;
}

void vmc_sessions_serve_maintenance(void)
{
    maintenance = true;
    serve(NULL);
    abort(); /* serve(NULL) never ends */
}
