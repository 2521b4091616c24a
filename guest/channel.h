/* The agent's end of the virtio-serial port (guest/PROTOCOL.md, "Frame"). */
#ifndef VMC_CHANNEL_H
#define VMC_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

struct vmc_channel;

/* Find the character device of the virtio-serial port called `name`
 * (/sys/class/virtio-ports/vportNpM/name) and write "/dev/vportNpM" to devpath.
 * Ports appear asynchronously after boot: waits up to timeout_ms.
 * 0, or -1 with errno (ETIMEDOUT when no such port appeared). */
int vmc_channel_find(const char *name, char *devpath, size_t len, int timeout_ms);

/* Open the port (O_RDWR | O_NONBLOCK | O_CLOEXEC). NULL with errno on failure. */
struct vmc_channel *vmc_channel_open(const char *devpath);

/* The file descriptor, for poll(POLLIN) in the caller's loop. */
int vmc_channel_fd(const struct vmc_channel *ch);

/* Send one frame about `session`; blocks (poll, never spinning) until every byte is written:
 * while the host is not connected, virtio-serial holds writes back and so does
 * this. 0, or -1 with errno (logged) on failure; EMSGSIZE above VMC_MAX_PAYLOAD. */
int vmc_channel_send(struct vmc_channel *ch, uint8_t type, uint16_t session, const void *payload, size_t len);

/* Called for each whole frame the host sent: type, session, payload, payload length. */
typedef void (*vmc_frame_handler)(void *ctx, uint8_t type, uint16_t session, const uint8_t *payload, size_t len);

/* Read what the host sent and call handler for every complete frame (unknown
 * types are the handler's to skip). 1: read something or nothing pending; 0: the
 * host is not connected (the port then polls readable and hung up until it
 * connects); -1 with errno on error. */
int vmc_channel_read_input(struct vmc_channel *ch, vmc_frame_handler handler, void *ctx);

void vmc_channel_free(struct vmc_channel *ch);

#endif
