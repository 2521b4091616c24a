/* The agent's end of the virtio-serial port: framing and write-all.
 *
 * Linux virtio-serial (drivers/char/virtio_console.c) on a non-blocking fd:
 * write() takes at most 32 KiB and returns EAGAIN while the host is not
 * connected or the queue is full. poll() reports POLLOUT when writable, but also
 * POLLHUP (and POLLIN, read() returning 0) for as long as the host is not
 * connected — a state poll cannot wait out. So: EAGAIN + POLLOUT → retry;
 * EAGAIN + POLLHUP → one blocking write(), which sleeps in the kernel until the
 * host connects. Nothing is dropped and nothing spins. */
#include "channel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"
#include "util.h"

struct vmc_channel {
    int fd;
    char path[300];
    uint8_t *buf; /* header + payload of the frame being sent */
    size_t cap;
    uint8_t in[VMC_HEADER_SIZE + VMC_MAX_HOST_PAYLOAD]; /* a frame being received */
    size_t in_len;
};

static int find_once(const char *name, char *devpath, size_t len)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    if (d == NULL)
        return -1;
    struct dirent *de;
    int found = -1;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "vport", 5) != 0)
            continue;
        char attr[320], value[256];
        snprintf(attr, sizeof attr, "/sys/class/virtio-ports/%s/name", de->d_name);
        if (vmc_read_attr(attr, value, sizeof value) < 0 || strcmp(value, name) != 0)
            continue;
        snprintf(devpath, len, "/dev/%s", de->d_name);
        /* devtmpfs creates the node when the device is added; check anyway. */
        if (access(devpath, F_OK) == 0)
            found = 0;
        break;
    }
    closedir(d);
    return found;
}

int vmc_channel_find(const char *name, char *devpath, size_t len, int timeout_ms)
{
    int64_t deadline = vmc_now_ms() + timeout_ms;
    for (;;) {
        if (find_once(name, devpath, len) == 0)
            return 0;
        if (vmc_now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        vmc_sleep_ms(2);
    }
}

struct vmc_channel *vmc_channel_open(const char *devpath)
{
    struct vmc_channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return NULL;
    snprintf(ch->path, sizeof ch->path, "%s", devpath);
    ch->fd = open(devpath, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (ch->fd < 0) {
        int e = errno;
        free(ch);
        errno = e;
        return NULL;
    }
    return ch;
}

int vmc_channel_fd(const struct vmc_channel *ch) { return ch->fd; }

/* One write() with O_NONBLOCK cleared: sleeps until the host connects. */
static ssize_t write_blocking(struct vmc_channel *ch, const uint8_t *p, size_t n)
{
    int flags = fcntl(ch->fd, F_GETFL);
    if (flags < 0 || fcntl(ch->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return -1;
    ssize_t w;
    do
        w = write(ch->fd, p, n);
    while (w < 0 && errno == EINTR);
    int e = errno;
    if (fcntl(ch->fd, F_SETFL, flags) < 0 && w >= 0)
        return -1;
    errno = e;
    return w;
}

static int write_all(struct vmc_channel *ch, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(ch->fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = ch->fd, .events = POLLOUT};
            int r = poll(&pfd, 1, -1);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (pfd.revents & POLLOUT)
                continue;
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return -1;
            }
            if (pfd.revents & POLLERR) {
                errno = EIO;
                return -1;
            }
            /* POLLHUP without POLLOUT: the host is not connected. */
            w = write_blocking(ch, p, n);
        }
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vmc_channel_send(struct vmc_channel *ch, uint8_t type, uint16_t session, const void *payload, size_t len)
{
    if (len > VMC_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    size_t total = VMC_HEADER_SIZE + len;
    if (total > ch->cap) {
        uint8_t *nb = realloc(ch->buf, total);
        if (nb == NULL) {
            errno = ENOMEM;
            return -1;
        }
        ch->buf = nb;
        ch->cap = total;
    }
    vmc_header_encode(ch->buf, type, session, (uint32_t)len);
    if (len > 0)
        memcpy(ch->buf + VMC_HEADER_SIZE, payload, len);
    if (write_all(ch, ch->buf, total) < 0) {
        int e = errno;
        vmc_error("write to %s: %s (errno %d)", ch->path, strerror(e), e);
        errno = e;
        return -1;
    }
    return 0;
}

/* Frames from the host: deliver each whole one; a frame larger than this side
 * accepts is skipped, payload and all (the stream stays in step). */
static void deliver(struct vmc_channel *ch, vmc_frame_handler handler, void *ctx)
{
    for (;;) {
        if (ch->in_len < VMC_HEADER_SIZE)
            return;
        uint32_t len = (uint32_t)ch->in[4] << 24 | (uint32_t)ch->in[5] << 16 | (uint32_t)ch->in[6] << 8 | ch->in[7];
        if (len > VMC_MAX_HOST_PAYLOAD) {
            vmc_error("host frame of type %#x with %u bytes exceeds %u; the port is out of step", ch->in[0], len,
                      VMC_MAX_HOST_PAYLOAD);
            ch->in_len = 0;
            return;
        }
        size_t whole = VMC_HEADER_SIZE + len;
        if (ch->in_len < whole)
            return;
        handler(ctx, ch->in[0], (uint16_t)(ch->in[2] << 8 | ch->in[3]), ch->in + VMC_HEADER_SIZE, len);
        memmove(ch->in, ch->in + whole, ch->in_len - whole);
        ch->in_len -= whole;
    }
}

int vmc_channel_read_input(struct vmc_channel *ch, vmc_frame_handler handler, void *ctx)
{
    for (int i = 0; i < 16; i++) { /* bounded: the caller's loop comes back */
        ssize_t n = read(ch->fd, ch->in + ch->in_len, sizeof ch->in - ch->in_len);
        if (n > 0) {
            ch->in_len += (size_t)n;
            deliver(ch, handler, ctx);
            continue;
        }
        if (n == 0) {
            ch->in_len = 0; /* the host went away: a half frame will not be finished */
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 1;
        int e = errno;
        vmc_error("read from %s: %s (errno %d)", ch->path, strerror(e), e);
        errno = e;
        return -1;
    }
    return 1;
}

void vmc_channel_free(struct vmc_channel *ch)
{
    if (ch == NULL)
        return;
    if (ch->fd >= 0)
        close(ch->fd);
    free(ch->buf);
    free(ch);
}
