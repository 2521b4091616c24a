/* vmcontainer agent protocol, version 3: the constants of guest/PROTOCOL.md.
 * tests/unit/test_protocol_doc.py checks them against the document and against
 * vmcontainer/guestlink/protocol.py; change all three together. */
#ifndef VMC_PROTOCOL_H
#define VMC_PROTOCOL_H

#include <stdint.h>

#define VMC_PROTOCOL_VERSION 3
/* "version" of /config.json (PROTOCOL.md, "Container config"). */
#define VMC_CONFIG_VERSION 2
#define VMC_AGENT_PORT_NAME "org.vmcontainer.agent.0"

/* Frame header: type u8, flags u8, session u16, payload length u32, big-endian. */
#define VMC_MAIN_SESSION 0
#define VMC_HEADER_SIZE 8
#define VMC_MAX_PAYLOAD 1048576u

/* Guest to host. */
#define VMC_MSG_HELLO 0x01
#define VMC_MSG_STDOUT 0x02
#define VMC_MSG_STDERR 0x03
#define VMC_MSG_STARTED 0x04
#define VMC_MSG_EXIT 0x05
#define VMC_MSG_START_ERROR 0x06
#define VMC_MSG_LOG 0x07
#define VMC_MSG_PROCESSES 0x08
#define VMC_MSG_ARCHIVE_INFO 0x09
#define VMC_MSG_SYNCED 0x0e
#define VMC_MSG_NET_RESULT 0x0c
#define VMC_MSG_RESUMED 0x0f

/* Host to guest. */
#define VMC_MSG_SIGNAL 0x81
#define VMC_MSG_STDIN 0x82
#define VMC_MSG_RESIZE 0x83
#define VMC_MSG_EXEC 0x84
#define VMC_MSG_TOP 0x85
#define VMC_MSG_ARCHIVE 0x86
#define VMC_MSG_SYNC 0x8a
#define VMC_MSG_NET_CONFIG 0x88
#define VMC_MSG_CONFIG 0x8b
#define VMC_MSG_NET_RELEASE 0x8d
#define VMC_MSG_ACK 0x8e
#define VMC_MSG_RESUME 0x8f

/* The largest host-to-guest payload the agent accepts (larger frames are skipped). */
#define VMC_MAX_HOST_PAYLOAD 65536u

/* Exit codes of START_ERROR, as Docker's. */
#define VMC_EXIT_SETUP_FAILED 125
#define VMC_EXIT_CANNOT_EXECUTE 126
#define VMC_EXIT_NOT_FOUND 127

static inline void vmc_header_encode(uint8_t out[VMC_HEADER_SIZE], uint8_t type, uint16_t session, uint32_t length)
{
    out[0] = type;
    out[1] = 0; /* flags */
    out[2] = (uint8_t)(session >> 8);
    out[3] = (uint8_t)session;
    out[4] = (uint8_t)(length >> 24);
    out[5] = (uint8_t)(length >> 16);
    out[6] = (uint8_t)(length >> 8);
    out[7] = (uint8_t)length;
}

#endif
