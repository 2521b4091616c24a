/* EXEC: a process in the running container (docker exec). */
#ifndef VMC_EXEC_H
#define VMC_EXEC_H

#include <sys/types.h>

#include "config.h"
#include "spawn.h"

/* Start p in the PID, mount, UTS and IPC namespaces and the root of the
 * container's PID 1 (main_pid, in the agent's PID namespace), as a child of the
 * agent. vmc_spawn's results; when the namespaces cannot be joined (the main
 * process has ended): 1 with exit code 126. */
int vmc_exec_start(pid_t main_pid, const struct vmc_process *p, struct vmc_spawned *st);

#endif
