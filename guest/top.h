/* TOP: the guest's processes (guest/PROTOCOL.md, PROCESSES). */
#ifndef VMC_TOP_H
#define VMC_TOP_H

#include <json-c/json.h>

/* The PROCESSES object: every process of /proc but the agent (PID 1) and
 * kernel threads, by ascending pid. NULL only when out of memory. */
json_object *vmc_top(void);

#endif
