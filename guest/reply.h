/* Guest-to-host frames with JSON payloads (guest/PROTOCOL.md). */
#ifndef VMC_REPLY_H
#define VMC_REPLY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmc_channel;

void vmc_reply_set_channel(struct vmc_channel *ch);

/* Send obj as one frame about session, and free it. */
void vmc_send_json(uint8_t type, uint16_t session, json_object *obj);

/* START_ERROR {"exit_code", "message"}. */
void vmc_send_start_error(uint16_t session, int code, const char *message);

/* EXIT's object for a wait status. */
json_object *vmc_exit_json(int status, bool oom_killed);

/* A JSON payload, or NULL when it is not JSON. */
json_object *vmc_json_parse(const uint8_t *payload, size_t len);

#endif
