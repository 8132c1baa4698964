/*
 * ratelimit.h - per-source token buckets (issue 7, item 7).
 *
 * One limiter holds a bucket per key (an intent's source, an approver):
 * each bucket holds up to `burst` tokens and refills at `rate` tokens per
 * second; a message takes one token or is refused. The table of buckets is
 * bounded: when it is full, the least recently used bucket is forgotten to
 * make room, so a flood of made-up keys costs a fixed amount of memory (a
 * forgotten key starts again with a full bucket). A refusal says whether
 * it should be answered: only the first one after a pass is, so answers
 * come no faster than the rate and answering a flood does not multiply it. Time is passed in
 * (monotonic milliseconds), so tests drive it; the module does no I/O and
 * reads no clock.
 */
#ifndef HEARTH_RUNTIME_RATELIMIT_H
#define HEARTH_RUNTIME_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_RATELIMIT_KEY_MAX 64 /* longer keys are refused by take() */

typedef struct hearth_ratelimit hearth_ratelimit;

/*
 * A limiter of rate tokens per second (0: no limit, every take() succeeds),
 * burst tokens per bucket (1 or more) and at most max_keys buckets (1 or
 * more). Fills *out; the caller frees it with hearth_ratelimit_free().
 * 0, HEARTH_E_INVALID or -ENOMEM.
 */
int hearth_ratelimit_new(int rate, int burst, size_t max_keys, hearth_ratelimit **out);
void hearth_ratelimit_free(hearth_ratelimit *rl);

/* What a refusal was. */
struct hearth_ratelimit_refusal {
	int64_t retry_ms;    /* the next token comes in this many ms */
	bool answer;         /* the first refusal since a pass */
	uint32_t unanswered; /* with answer: refusals left unanswered since the last answer */
};

/*
 * Take one token from key's bucket at now_ms. true: allowed. false: the
 * bucket is empty (*r, when not NULL, says more), or key is empty or longer
 * than HEARTH_RATELIMIT_KEY_MAX (then r->answer is true).
 */
bool hearth_ratelimit_take(hearth_ratelimit *rl, const char *key, int64_t now_ms,
                           struct hearth_ratelimit_refusal *r);

/* How many buckets the limiter holds now (at most max_keys). */
size_t hearth_ratelimit_count(const hearth_ratelimit *rl);

#endif
