/* `docker run --init`: a small init, PID 1 of the container's namespace. */
#ifndef VMC_INIT_H
#define VMC_INIT_H

/* Fork: returns in the child (which goes on to exec the process); the parent
 * becomes the init and never returns: it forwards every signal it receives to
 * the child, reaps every zombie, and exits with the child's exit code, or
 * 128+n when the child was killed by signal n. err_pipe (the start-error pipe)
 * is closed in the init, so that the agent sees the child's execve. */
void vmc_init_fork(int err_pipe);

#endif
