/*
 * bus.h - the in-process message bus: a FIFO of agent messages. Agents post
 * through an outbox; the hub drains the queue once per loop turn and routes
 * each message by type. Delivery is in order and never re-entrant: a message
 * posted while another is handled waits its turn.
 */
#ifndef HEARTH_RUNTIME_BUS_H
#define HEARTH_RUNTIME_BUS_H

#include "agents/msg.h"

#include <stddef.h>

typedef struct hearth_bus hearth_bus;

typedef void (*hearth_route_fn)(void *ud, hearth_msg *m);

int hearth_bus_new(hearth_bus **out);
/* Frees the queue and everything queued messages own. */
void hearth_bus_free(hearth_bus *b);
/* The outbox that posts into b. */
hearth_outbox hearth_bus_outbox(hearth_bus *b);
/* Deliver queued messages to route until the queue is empty; each message is
 * cleared (hearth_msg_clear) after route returns. Returns how many. */
size_t hearth_bus_drain(hearth_bus *b, hearth_route_fn route, void *ud);
size_t hearth_bus_pending(const hearth_bus *b);
/* Messages dropped because the queue could not grow (out of memory). */
unsigned long hearth_bus_dropped(const hearth_bus *b);

#endif
