/* PTYs of the container's own devpts instance (like runc's console socket). */
#ifndef VMC_TTY_H
#define VMC_TTY_H

/* Child side, inside the container's root: open /dev/pts/ptmx, unlock it, set
 * the initial size (rows/cols when not 0), send the master to the agent over
 * sock (SCM_RIGHTS) and return the slave, opened O_NOCTTY, owned by uid.
 * -1 with errno on failure. */
int vmc_tty_open(int sock, int rows, int cols, unsigned uid);

/* Agent side: the master fd sent over sock (made CLOEXEC), or -1 with errno. */
int vmc_tty_recv_master(int sock);

/* TIOCSWINSZ on the master (the foreground process group gets SIGWINCH). */
int vmc_tty_resize(int master, int rows, int cols);

/* The terminal's end-of-file character (VEOF, usually ^D). */
char vmc_tty_eof_char(int master);

#endif
