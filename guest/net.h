#ifndef VMC_NET_H
#define VMC_NET_H

/* Bring the loopback interface up. Returns 0, or -1 (logged). */
int vmc_loopback_up(void);

#endif
