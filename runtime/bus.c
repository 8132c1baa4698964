/*
 * bus.c - a growable ring of hearth_msg (see bus.h). Messages are copied in
 * by value; what they point to moves with them.
 */
#include "runtime/bus.h"

#include "platform/alloc.h"

#include <errno.h>

struct hearth_bus {
	hearth_msg *q;
	size_t head, len, cap;
	unsigned long dropped;
};

int
hearth_bus_new(hearth_bus **out)
{
	hearth_bus *b = hearth_calloc(1, sizeof(*b));

	*out = b;
	return b ? 0 : -ENOMEM;
}

void
hearth_bus_free(hearth_bus *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->len; i++)
		hearth_msg_clear(&b->q[(b->head + i) % b->cap]);
	hearth_free(b->q);
	hearth_free(b);
}

static int
grow(hearth_bus *b)
{
	size_t ncap = b->cap ? b->cap * 2 : 64;
	hearth_msg *nq = hearth_malloc(ncap * sizeof(*nq));

	if (!nq)
		return -ENOMEM;
	for (size_t i = 0; i < b->len; i++)
		nq[i] = b->q[(b->head + i) % b->cap];
	hearth_free(b->q);
	b->q = nq;
	b->head = 0;
	b->cap = ncap;
	return 0;
}

static void
post(void *ud, hearth_msg *m)
{
	hearth_bus *b = ud;

	if (b->len == b->cap && grow(b)) {
		b->dropped++;
		hearth_msg_clear(m);
		return;
	}
	b->q[(b->head + b->len) % b->cap] = *m;
	b->len++;
}

hearth_outbox
hearth_bus_outbox(hearth_bus *b)
{
	return (hearth_outbox){.post = post, .ud = b};
}

size_t
hearth_bus_drain(hearth_bus *b, hearth_route_fn route, void *ud)
{
	size_t n = 0;

	while (b->len) {
		hearth_msg m = b->q[b->head];

		b->head = (b->head + 1) % b->cap;
		b->len--;
		route(ud, &m);
		hearth_msg_clear(&m);
		n++;
	}
	return n;
}

size_t
hearth_bus_pending(const hearth_bus *b)
{
	return b->len;
}

unsigned long
hearth_bus_dropped(const hearth_bus *b)
{
	return b->dropped;
}
