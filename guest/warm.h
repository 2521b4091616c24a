/* Warm start: a template VM's agent waits for its container's config on the
 * port instead of reading the config disk (guest/PROTOCOL.md, "Warm start"). */
#ifndef VMC_WARM_H
#define VMC_WARM_H

#include <stddef.h>

#include "channel.h"

/* Wait (forever) for the host's CONFIG frame on session 0, serving other frames
 * (TOP) meanwhile; while the host is not connected, poll the port every 2 ms.
 * Returns the payload, NUL-terminated (malloc'd), its length in *len. */
char *vmc_warm_wait_config(struct vmc_channel *chan, size_t *len);

/* What a clone must not share with its template, from the config's optional
 * "seed" (hex: mixed into the kernel's pool, which is then reseeded) and
 * "clock_ns" (CLOCK_REALTIME); then drop every virtio disk's cached blocks (read
 * at the template's boot, from another disk). Failures are logged only. */
void vmc_warm_freshen(const char *text, size_t len);

#endif
