/*
 * ctl.h - the control socket hearthctl talks to: a unix stream socket in the
 * data dir (hearthd.sock, mode 0600). One request per connection: a JSON
 * line {"cmd":"status",...}; one answer: a JSON line {"ok":true,"result":...}
 * or {"ok":false,"error":"..."}, then the hub closes the connection.
 */
#ifndef HEARTH_RUNTIME_CTL_H
#define HEARTH_RUNTIME_CTL_H

#include "runtime/loop.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct hearth_ctl hearth_ctl;

/* Answer req: return a result tree (the ctl frees it), or NULL with a
 * one-line error in err. */
typedef cJSON *(*hearth_ctl_fn)(void *ud, const char *cmd, const cJSON *req, char *err,
                                size_t err_len);

int hearth_ctl_open(hearth_loop *loop, const char *path, hearth_ctl_fn fn, void *ud,
                    hearth_ctl **out, char *why, size_t why_len);
/* Close the socket and its clients, and remove the socket file. */
void hearth_ctl_close(hearth_ctl *c);

#endif
