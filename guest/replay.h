/* The main process's output, kept until the host has stored it (guest/PROTOCOL.md,
 * "Acknowledged output"): a restarted host loses nothing that was on its way. */
#ifndef VMC_REPLAY_H
#define VMC_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmc_channel;

/* At most this many bytes are kept: above it the oldest records are dropped. */
#define VMC_REPLAY_BOUND (1u << 20)

void vmc_replay_init(struct vmc_channel *ch);

/* Send one STDOUT or STDERR frame of session 0 and keep its bytes. */
void vmc_replay_send(uint8_t type, const void *data, size_t len);

/* Send session 0's EXIT (a JSON text) and keep it for a RESUME. */
void vmc_replay_send_exit(const char *json);

/* ACK (16 bytes: stdout, stderr counts, u64 big-endian): drop what the host stored. */
void vmc_replay_on_ack(const uint8_t *payload, size_t len);

/* RESUME (16 bytes of counts, then the host's token): RESUMED with the token,
 * every kept byte after the counts, and EXIT again when it was sent. */
void vmc_replay_on_resume(const uint8_t *payload, size_t len);

#endif
