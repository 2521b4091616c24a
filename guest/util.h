/* Small helpers shared by the agent's parts: logging, files, time. */
#ifndef VMC_UTIL_H
#define VMC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vmc_channel;

/* Log sinks: the console (fd 2, when open) and, once set, LOG frames on the channel. */
void vmc_log_set_channel(struct vmc_channel *ch);
/* A diagnostic line: a LOG frame, or the console while there is no channel. */
void vmc_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error or warning: the console and a LOG frame. */
void vmc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* strerror(err) as Go spells it (lower-case first letter), for Docker-like messages. */
const char *vmc_strerror_go(int err, char *buf, size_t len);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t vmc_now_ms(void);
void vmc_sleep_ms(int ms);

/* Whole file into a NUL-terminated malloc'd buffer (at most max bytes).
 * NULL with errno on failure (EFBIG when larger than max). */
char *vmc_read_file(const char *path, size_t max, size_t *len_out);
/* First line of a small file (sysfs attributes), trailing whitespace removed.
 * -1 with errno on failure. */
int vmc_read_attr(const char *path, char *buf, size_t len);
/* Create or truncate path (mode) and write data. -1 with errno on failure. */
int vmc_write_file(const char *path, const char *data, size_t len, mode_t mode);
/* mkdir -p (mode for the directories it creates). -1 with errno on failure;
 * *failed_at (if not NULL) points to a static copy of the path that failed. */
int vmc_mkdir_p(const char *path, mode_t mode, const char **failed_at);

#endif
