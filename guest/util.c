/* Logging, file and time helpers of the agent. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "protocol.h"

static struct vmc_channel *log_channel;

void vmc_log_set_channel(struct vmc_channel *ch) { log_channel = ch; }

static void log_console(const char *msg)
{
    char line[1200];
    int n = snprintf(line, sizeof line, "vmcontainer-agent: %s\n", msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    /* The console may be missing (no /dev/console): then this fails, quietly. */
    ssize_t r = write(STDERR_FILENO, line, (size_t)n);
    (void)r;
}

static void log_frame(const char *msg)
{
    struct vmc_channel *ch = log_channel;
    if (ch == NULL)
        return;
    log_channel = NULL; /* no recursion if sending the LOG frame itself fails */
    vmc_channel_send(ch, VMC_MSG_LOG, VMC_MAIN_SESSION, msg, strlen(msg));
    log_channel = ch;
}

void vmc_info(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_channel != NULL)
        log_frame(msg);
    else
        log_console(msg);
}

void vmc_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_console(msg);
    log_frame(msg);
}

const char *vmc_strerror_go(int err, char *buf, size_t len)
{
    snprintf(buf, len, "%s", strerror(err));
    if (buf[0] != '\0')
        buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

int64_t vmc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vmc_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

char *vmc_read_file(const char *path, size_t max, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1) {
                free(buf);
                close(fd);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

int vmc_read_attr(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    size_t l = strlen(buf);
    while (l > 0 && isspace((unsigned char)buf[l - 1]))
        buf[--l] = '\0';
    return 0;
}

int vmc_write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    if (close(fd) < 0)
        return -1;
    return 0;
}

int vmc_mkdir_p(const char *path, mode_t mode, const char **failed_at)
{
    static char cur[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof cur) {
        errno = ENAMETOOLONG;
        if (failed_at != NULL)
            *failed_at = path;
        return -1;
    }
    memcpy(cur, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (cur[i] != '/' && cur[i] != '\0')
            continue;
        char saved = cur[i];
        cur[i] = '\0';
        if (mkdir(cur, mode) < 0 && errno != EEXIST) {
            if (failed_at != NULL)
                *failed_at = cur;
            return -1;
        }
        cur[i] = saved;
    }
    /* EEXIST on the last part may be a file: make sure it is a directory
     * (stat follows symlinks, as chdir will). */
    struct stat st;
    int bad = stat(path, &st) < 0;
    if (!bad && !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        bad = 1;
    }
    if (bad) {
        if (failed_at != NULL)
            *failed_at = path;
        return -1;
    }
    return 0;
}
