/*
 * hub.h - hearthd's runtime: it owns the event loop, the MQTT connection, the
 * store, the control socket and the agents, and routes messages between them.
 * Everything that does I/O is here; the agents only compute.
 */
#ifndef HEARTH_RUNTIME_HUB_H
#define HEARTH_RUNTIME_HUB_H

#include "runtime/config.h"

#include <stddef.h>

typedef struct hearth_hub hearth_hub;

/* Build the hub from cfg (borrowed; must outlive the hub): lock the data
 * dir, open the store, load recipes, make the agents and the control
 * socket. Returns 0, or a negative error with a reason in why. */
int hearth_hub_new(const struct hearth_config *cfg, hearth_hub **out, char *why, size_t why_len);
/* Run until SIGTERM/SIGINT; then go offline cleanly. Returns 0 or an error. */
int hearth_hub_run(hearth_hub *h);
void hearth_hub_free(hearth_hub *h);

#endif
