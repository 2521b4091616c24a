/* Sessions (guest/PROTOCOL.md): the main process (0) and EXEC processes;
 * their output, stdin, signals, window size, and the agent's event loop. */
#ifndef VMC_SESSION_H
#define VMC_SESSION_H

#include <stdint.h>
#include <sys/types.h>

#include "spawn.h"

struct vmc_channel;

/* A process's stdin waiting for the process: above this many bytes in one
 * session the agent stops reading the port until it drains. */
#define VMC_STDIN_BOUND (1u << 20)

void vmc_sessions_init(struct vmc_channel *ch, int sig_fd);

/* The host-to-guest frame handler (vmc_frame_handler), at any time: before the
 * main process started or after it ended, EXEC is refused, SIGNAL, STDIN and
 * RESIZE are ignored, TOP is answered. */
void vmc_session_on_frame(void *ctx, uint8_t type, uint16_t session, const uint8_t *payload, size_t len);

/* The main process started: serve every session until it has ended, its output
 * is forwarded and every EXEC session is closed (EXIT sent). The main
 * process's wait status. The fds of st are the loop's (closed by it). */
int vmc_sessions_serve(const struct vmc_spawned *main, int stdin_open);

/* Where ARCHIVE workers find the root filesystem in the agent's own mount
 * namespace (the agent's mount of it, no container mounts on top). */
void vmc_sessions_set_rootfs(const char *path);

/* Maintenance boot (vmcontainer.maintenance=1): no container process; serve
 * ARCHIVE (and TOP) sessions until the host ends the VM. Never returns. */
void vmc_sessions_serve_maintenance(void) __attribute__((noreturn));

#endif
