/* Warm start: config over the port, and what a clone makes fresh. */
#include "warm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "session.h"
#include "util.h"

struct waiting {
    char *text;
    size_t len;
};

static void on_frame(void *ctx, uint8_t type, uint16_t session, const uint8_t *payload, size_t len)
{
    struct waiting *w = ctx;
    if (type != VMC_MSG_CONFIG || session != VMC_MAIN_SESSION) {
        vmc_session_on_frame(NULL, type, session, payload, len);
        return;
    }
    if (w->text != NULL)
        return; /* one config per boot */
    if ((w->text = malloc(len + 1)) == NULL)
        return;
    memcpy(w->text, payload, len);
    w->text[len] = '\0';
    w->len = len;
}

char *vmc_warm_wait_config(struct vmc_channel *chan, size_t *len)
{
    struct waiting w = {0};
    for (;;) {
        struct pollfd p = {.fd = vmc_channel_fd(chan), .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            vmc_sleep_ms(2);
        int rc = vmc_channel_read_input(chan, on_frame, &w);
        if (w.text != NULL) {
            *len = w.len;
            return w.text;
        }
        if (rc <= 0)
            vmc_sleep_ms(2); /* not connected (yet): the port polls hung up */
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void reseed(const char *hex)
{
    size_t n = strlen(hex) / 2;
    if (n == 0 || n > 512)
        return;
    struct rand_pool_info *info = calloc(1, sizeof *info + n);
    if (info == NULL)
        return;
    uint8_t *buf = (uint8_t *)info->buf;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(info);
            return;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    info->entropy_count = (int)(n * 8);
    info->buf_size = (int)n;
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, RNDADDENTROPY, info) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
        vmc_error("reseed /dev/urandom: %s (errno %d)", strerror(errno), errno);
    if (fd >= 0)
        close(fd);
    explicit_bzero(info, sizeof *info + n);
    free(info);
}

static void flush_disks(void)
{
    DIR *d = opendir("/sys/block");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "vd", 2) != 0)
            continue;
        char dev[300];
        snprintf(dev, sizeof dev, "/dev/%s", de->d_name);
        int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ioctl(fd, BLKFLSBUF, 0) < 0)
            vmc_error("flush %s: %s (errno %d)", dev, strerror(errno), errno);
        if (fd >= 0)
            close(fd);
    }
    if (d != NULL)
        closedir(d);
}

void vmc_warm_freshen(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    json_object *v;
    if (root != NULL && json_object_object_get_ex(root, "seed", &v) && json_object_is_type(v, json_type_string))
        reseed(json_object_get_string(v));
    if (root != NULL && json_object_object_get_ex(root, "clock_ns", &v) && json_object_is_type(v, json_type_int)) {
        int64_t ns = json_object_get_int64(v);
        struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
        if (ns > 0 && clock_settime(CLOCK_REALTIME, &ts) < 0)
            vmc_error("clock_settime: %s (errno %d)", strerror(errno), errno);
    }
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    flush_disks();
}
