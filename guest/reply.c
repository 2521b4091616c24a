/* Guest-to-host frames with JSON payloads (guest/PROTOCOL.md). */
#include "reply.h"

#include <sys/wait.h>

#include "channel.h"
#include "protocol.h"

static struct vmc_channel *chan;

void vmc_reply_set_channel(struct vmc_channel *ch) { chan = ch; }

void vmc_send_json(uint8_t type, uint16_t session, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    vmc_channel_send(chan, type, session, s, len);
    json_object_put(obj);
}

json_object *vmc_exit_json(int status, bool oom_killed)
{
    json_object *ex = json_object_new_object();
    if (WIFSIGNALED(status)) {
        json_object_object_add(ex, "exit_code", json_object_new_int(128 + WTERMSIG(status)));
        json_object_object_add(ex, "signal", json_object_new_int(WTERMSIG(status)));
    } else {
        json_object_object_add(ex, "exit_code", json_object_new_int(WEXITSTATUS(status)));
        json_object_object_add(ex, "signal", NULL);
    }
    json_object_object_add(ex, "oom_killed", json_object_new_boolean(oom_killed));
    return ex;
}

void vmc_send_start_error(uint16_t id, int code, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "exit_code", json_object_new_int(code));
    json_object_object_add(o, "message", json_object_new_string(message));
    vmc_send_json(VMC_MSG_START_ERROR, id, o);
}

json_object *vmc_json_parse(const uint8_t *payload, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *obj = tok ? json_tokener_parse_ex(tok, (const char *)payload, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    return obj;
}

