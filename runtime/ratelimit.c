/*
 * ratelimit.c - per-source token buckets (see ratelimit.h). The buckets
 * live in one array of max_keys slots, found through a chained hash table
 * and kept on a doubly linked list in order of use: a hit moves its bucket
 * to the front, a miss on a full table reuses the bucket at the back. Tokens
 * are counted in thousandths, so a refill of rate tokens per second is rate
 * thousandths per millisecond and the arithmetic stays exact. Each bucket
 * also remembers whether a refusal was answered since its last pass, and how
 * many went unanswered since. It owns its
 * table and nothing else, and never reads a clock.
 */
#include "runtime/ratelimit.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <errno.h>
#include <string.h>

#define NIL ((uint32_t)-1)

struct bucket {
	char key[HEARTH_RATELIMIT_KEY_MAX + 1];
	int64_t milli; /* tokens x 1000 at last_ms */
	int64_t last_ms;
	uint32_t unanswered; /* refusals since, not answered */
	bool refused;        /* a refusal was answered since the last pass */
	uint32_t hnext;      /* next in its hash chain */
	uint32_t prev, next; /* use order: prev is more recent */
};

struct hearth_ratelimit {
	int64_t rate; /* tokens per second = thousandths per ms */
	int64_t cap;  /* burst x 1000 */
	uint32_t max, used;
	uint32_t nheads; /* a power of two */
	uint32_t *heads;
	uint32_t mru, lru;
	struct bucket *b;
};

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int
hearth_ratelimit_new(int rate, int burst, size_t max_keys, hearth_ratelimit **out)
{
	hearth_ratelimit *rl;

	*out = NULL;
	if (rate < 0 || burst < 1 || max_keys < 1 || max_keys > (1u << 24))
		return HEARTH_E_INVALID;
	rl = hearth_calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rl->rate = rate;
	rl->cap = (int64_t)burst * 1000;
	rl->max = (uint32_t)max_keys;
	rl->mru = rl->lru = NIL;
	for (rl->nheads = 16; rl->nheads < 2 * rl->max; rl->nheads *= 2)
		;
	rl->heads = hearth_malloc(rl->nheads * sizeof(*rl->heads));
	rl->b = hearth_calloc(rl->max, sizeof(*rl->b));
	if (!rl->heads || !rl->b) {
		hearth_ratelimit_free(rl);
		return -ENOMEM;
	}
	memset(rl->heads, 0xff, rl->nheads * sizeof(*rl->heads));
	*out = rl;
	return 0;
}

void
hearth_ratelimit_free(hearth_ratelimit *rl)
{
	if (!rl)
		return;
	hearth_free(rl->heads);
	hearth_free(rl->b);
	hearth_free(rl);
}

size_t
hearth_ratelimit_count(const hearth_ratelimit *rl)
{
	return rl ? rl->used : 0;
}

/* ==== Use order ==== */

static void
unlink_use(hearth_ratelimit *rl, uint32_t i)
{
	struct bucket *e = &rl->b[i];

	if (e->prev != NIL)
		rl->b[e->prev].next = e->next;
	else
		rl->mru = e->next;
	if (e->next != NIL)
		rl->b[e->next].prev = e->prev;
	else
		rl->lru = e->prev;
}

static void
push_front(hearth_ratelimit *rl, uint32_t i)
{
	struct bucket *e = &rl->b[i];

	e->prev = NIL;
	e->next = rl->mru;
	if (rl->mru != NIL)
		rl->b[rl->mru].prev = i;
	rl->mru = i;
	if (rl->lru == NIL)
		rl->lru = i;
}

/* ==== Hash chains ==== */

static uint32_t
find(const hearth_ratelimit *rl, const char *key, uint32_t h)
{
	for (uint32_t i = rl->heads[h & (rl->nheads - 1)]; i != NIL; i = rl->b[i].hnext)
		if (!strcmp(rl->b[i].key, key))
			return i;
	return NIL;
}

static void
unchain(hearth_ratelimit *rl, uint32_t i)
{
	uint32_t *p = &rl->heads[hash(rl->b[i].key) & (rl->nheads - 1)];

	while (*p != i)
		p = &rl->b[*p].hnext;
	*p = rl->b[i].hnext;
}

/* A bucket for key, full at now_ms: a free slot, else the least recently used one. */
static uint32_t
add(hearth_ratelimit *rl, const char *key, size_t len, uint32_t h, int64_t now_ms)
{
	uint32_t i, *head = &rl->heads[h & (rl->nheads - 1)];

	if (rl->used < rl->max) {
		i = rl->used++;
	} else {
		i = rl->lru;
		unlink_use(rl, i);
		unchain(rl, i);
	}
	memcpy(rl->b[i].key, key, len + 1);
	rl->b[i].milli = rl->cap;
	rl->b[i].last_ms = now_ms;
	rl->b[i].unanswered = 0;
	rl->b[i].refused = false;
	rl->b[i].hnext = *head;
	*head = i;
	push_front(rl, i);
	return i;
}

bool
hearth_ratelimit_take(hearth_ratelimit *rl, const char *key, int64_t now_ms,
                      struct hearth_ratelimit_refusal *r)
{
	struct hearth_ratelimit_refusal dummy;
	struct bucket *e;
	size_t len;
	uint32_t h, i;

	if (!r)
		r = &dummy;
	*r = (struct hearth_ratelimit_refusal){.answer = true};
	if (!rl || !key || !(len = strlen(key)) || len > HEARTH_RATELIMIT_KEY_MAX)
		return false;
	if (!rl->rate)
		return true;
	h = hash(key);
	i = find(rl, key, h);
	if (i == NIL) {
		i = add(rl, key, len, h, now_ms);
	} else {
		unlink_use(rl, i);
		push_front(rl, i);
	}
	e = &rl->b[i];
	if (now_ms > e->last_ms) {
		int64_t dt = now_ms - e->last_ms;

		/* Past a full refill the exact figure does not matter (and cannot overflow). */
		e->milli = dt >= (rl->cap + rl->rate - 1) / rl->rate ? rl->cap
		                                                     : e->milli + dt * rl->rate;
		if (e->milli > rl->cap)
			e->milli = rl->cap;
		e->last_ms = now_ms;
	}
	if (e->milli >= 1000) {
		e->milli -= 1000;
		e->refused = false;
		return true;
	}
	r->retry_ms = (1000 - e->milli + rl->rate - 1) / rl->rate;
	r->answer = !e->refused;
	if (!r->answer) {
		e->unanswered++;
		return false;
	}
	r->unanswered = e->unanswered;
	e->unanswered = 0;
	e->refused = true;
	return false;
}
