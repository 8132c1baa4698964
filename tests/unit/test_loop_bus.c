/*
 * test_loop_bus.c - the message bus and the event loop, the two pieces every
 * message and every wake-up of hearthd goes through. The bus: FIFO order,
 * what drain frees, messages posted while draining, growth of the ring when
 * it has wrapped. The loop (on the real monotonic clock, with waits of a
 * few milliseconds): timers in due order, cancel, move, a pipe that
 * becomes readable, and the per-turn hook.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/msg.h"
#include "agents/plan.h"
#include "platform/alloc.h"
#include "platform/clock.h"
#include "runtime/bus.h"
#include "runtime/loop.h"

/* ==== Bus ==== */

struct seen {
	char ids[512][HEARTH_ID_MAX + 1];
	int n;
	int depth, max_depth;
	hearth_outbox out; /* for posting from inside route */
	cJSON *taken;      /* a body route kept */
};

static void
post_id(hearth_outbox *out, const char *id, bool with_body)
{
	hearth_msg m = {.type = HEARTH_MSG_ERROR};

	snprintf(m.id, sizeof(m.id), "%s", id);
	if (with_body) {
		m.body = cJSON_CreateObject();
		assert_non_null(m.body);
		cJSON_AddStringToObject(m.body, "id", id);
	}
	hearth_post(out, &m);
}

static void
record(void *ud, hearth_msg *m)
{
	struct seen *s = ud;

	s->depth++;
	if (s->depth > s->max_depth)
		s->max_depth = s->depth;
	assert_true(s->n < 512);
	snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", m->id);
	/* the body arrives intact */
	if (m->body)
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(m->body, "id")->valuestring,
		                    m->id);
	if (!strcmp(m->id, "m1"))
		post_id(&s->out, "m1-child", true); /* posted while draining */
	if (!strcmp(m->id, "keep")) {
		s->taken = m->body; /* route keeps it: the bus must not free it */
		m->body = NULL;
	}
	s->depth--;
}

static void
test_bus_fifo(void **state)
{
	hearth_bus *b;
	hearth_outbox out;
	struct seen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(hearth_bus_new(&b), 0);
	out = hearth_bus_outbox(b);
	assert_int_equal(hearth_bus_drain(b, record, s), 0);
	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "n%d", i);
		post_id(&out, id, i % 2 == 0);
	}
	assert_int_equal(hearth_bus_pending(b), 5);
	assert_int_equal(hearth_bus_drain(b, record, s), 5);
	assert_int_equal(hearth_bus_pending(b), 0);
	assert_int_equal(s->n, 5);
	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "n%d", i);
		assert_string_equal(s->ids[i], id);
	}
	assert_int_equal(hearth_bus_dropped(b), 0);
	hearth_bus_free(b);
	free(s);
}

static void
test_bus_drain_clears(void **state)
{
	hearth_bus *b;
	hearth_outbox out;
	struct seen *s = calloc(1, sizeof(*s));
	hearth_msg m = {.type = HEARTH_MSG_PLAN};

	assert_non_null(s);
	assert_int_equal(hearth_bus_new(&b), 0);
	out = hearth_bus_outbox(b);
	/* everything a message can own: body, plan, reply address */
	snprintf(m.id, sizeof(m.id), "p-1");
	m.plan = hearth_plan_new(2);
	assert_non_null(m.plan);
	m.plan->steps[0].args = cJSON_CreateObject();
	m.plan->rationale = hearth_strdup("because");
	m.reply.topic = hearth_strdup("phone/x");
	m.reply.corr = hearth_memdup("ab", 2);
	m.reply.corr_len = 2;
	hearth_post(&out, &m);
	post_id(&out, "keep", true);
	post_id(&out, "drop", true);
	assert_int_equal(hearth_bus_drain(b, record, s), 3);
	/* the kept body is ours; the others were freed by drain (valgrind checks) */
	assert_non_null(s->taken);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(s->taken, "id")->valuestring, "keep");
	cJSON_Delete(s->taken);

	/* what is still queued when the bus goes is freed with it */
	post_id(&out, "left-1", true);
	post_id(&out, "left-2", false);
	assert_int_equal(hearth_bus_pending(b), 2);
	hearth_bus_free(b);
	free(s);
}

static void
test_bus_post_during_drain(void **state)
{
	hearth_bus *b;
	struct seen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(hearth_bus_new(&b), 0);
	s->out = hearth_bus_outbox(b);
	post_id(&s->out, "m0", true);
	post_id(&s->out, "m1", true);
	post_id(&s->out, "m2", false);
	/* the message posted while m1 is handled comes after what was queued,
	 * in the same drain, and route is never re-entered */
	assert_int_equal(hearth_bus_drain(b, record, s), 4);
	assert_int_equal(s->n, 4);
	assert_string_equal(s->ids[0], "m0");
	assert_string_equal(s->ids[1], "m1");
	assert_string_equal(s->ids[2], "m2");
	assert_string_equal(s->ids[3], "m1-child");
	assert_int_equal(s->max_depth, 1);
	assert_int_equal(hearth_bus_pending(b), 0);
	hearth_bus_free(b);
	free(s);
}

static void
test_bus_grows_when_wrapped(void **state)
{
	hearth_bus *b;
	hearth_outbox out;
	struct seen *s = calloc(1, sizeof(*s));
	int k = 0;

	assert_non_null(s);
	assert_int_equal(hearth_bus_new(&b), 0);
	out = hearth_bus_outbox(b);
	/* move the ring's head near its end, then fill past the end and grow */
	for (int i = 0; i < 60; i++)
		post_id(&out, "warm", false);
	assert_int_equal(hearth_bus_drain(b, record, s), 60);
	s->n = 0;
	for (int i = 0; i < 300; i++) {
		char id[16];

		snprintf(id, sizeof(id), "w%d", i);
		post_id(&out, id, i % 3 == 0);
	}
	assert_int_equal(hearth_bus_pending(b), 300);
	assert_int_equal(hearth_bus_drain(b, record, s), 300);
	for (int i = 0; i < 300; i++) {
		char id[16];

		snprintf(id, sizeof(id), "w%d", i);
		assert_string_equal(s->ids[k++], id);
	}
	assert_int_equal(hearth_bus_dropped(b), 0);
	hearth_bus_free(b);
	free(s);
}

/* ==== Loop ==== */

struct fired {
	char order[32];
	int n;
	int turns;
	int reads;
	int fd;
	uint32_t events;
};

struct timer_arg {
	struct fired *f;
	char name;
};

static void
on_timer(void *ud)
{
	struct timer_arg *a = ud;

	assert_true(a->f->n < 31);
	a->f->order[a->f->n++] = a->name;
	a->f->order[a->f->n] = '\0';
}

static void
on_turn(void *ud)
{
	struct fired *f = ud;

	f->turns++;
	assert_true(f->n < 31);
	f->order[f->n++] = '|'; /* the hook marks the end of each turn */
	f->order[f->n] = '\0';
}

static void
on_readable(void *ud, int fd, uint32_t events)
{
	struct fired *f = ud;
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
	f->reads++;
	f->fd = fd;
	f->events = events;
	assert_true(f->n < 31);
	f->order[f->n++] = c;
	f->order[f->n] = '\0';
}

/* Run turns until count timer or fd callbacks have run (at most 50 turns). */
static void
run_until(hearth_loop *l, struct fired *f, int count)
{
	for (int i = 0; i < 50; i++) {
		int n = 0;

		for (int j = 0; j < f->n; j++)
			n += f->order[j] != '|';
		if (n >= count)
			return;
		assert_int_equal(hearth_loop_run_once(l, 200), 0);
	}
	fail_msg("only \"%s\" fired", f->order);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

	nanosleep(&ts, NULL);
}

static void
test_loop_timers_in_due_order(void **state)
{
	struct fired f = {0};
	struct timer_arg a = {&f, 'a'}, b = {&f, 'b'}, c = {&f, 'c'};
	hearth_loop *l;
	int64_t now = hearth_mono_ms();
	int ia, ib, ic;

	assert_int_equal(hearth_loop_new(&l), 0);
	/* armed out of order, far enough apart to come due on separate turns */
	ia = hearth_loop_timer(l, now + 120, on_timer, &a);
	ib = hearth_loop_timer(l, now + 5, on_timer, &b);
	ic = hearth_loop_timer(l, now + 60, on_timer, &c);
	assert_true(ia > 0 && ib > 0 && ic > 0);
	assert_true(ia != ib && ib != ic && ia != ic);
	run_until(l, &f, 3);
	/* each fires on its own turn, earliest first */
	assert_string_equal(f.order, "bca");
	/* nothing fires before it is due */
	assert_true(hearth_mono_ms() >= now + 120);
	hearth_loop_free(l);
}

static void
test_loop_overdue_timers_in_due_order(void **state)
{
	struct fired f = {0};
	struct timer_arg a = {&f, 'a'}, b = {&f, 'b'}, c = {&f, 'c'};
	hearth_loop *l;
	int64_t now = hearth_mono_ms();

	/*
	 * Regression (fixed): runtime/loop.c run_timers() (line 175) fires due timers in the
	 * order of its unsorted array (and the swap-remove reorders it), not in
	 * due order: timers that are all overdue in one turn fire a, c, b here
	 * instead of b, c, a. When a turn was late (a long callback, a slow
	 * store sync) the deterministic order the design promises is lost.
	 * Pick the earliest due timer each time (or sort the due ones).
	 */
	assert_int_equal(hearth_loop_new(&l), 0);
	hearth_loop_timer(l, now + 3, on_timer, &a);
	hearth_loop_timer(l, now + 1, on_timer, &b);
	hearth_loop_timer(l, now + 2, on_timer, &c);
	sleep_ms(10); /* all three are overdue when the turn runs */
	assert_int_equal(hearth_loop_run_once(l, 0), 0);
	assert_string_equal(f.order, "bca");
	hearth_loop_free(l);
}

static void
test_loop_timer_cancel(void **state)
{
	struct fired f = {0};
	struct timer_arg a = {&f, 'a'}, b = {&f, 'b'};
	hearth_loop *l;
	int64_t now = hearth_mono_ms();
	int ia, ib;

	assert_int_equal(hearth_loop_new(&l), 0);
	ia = hearth_loop_timer(l, now + 5, on_timer, &a);
	ib = hearth_loop_timer(l, now + 15, on_timer, &b);
	hearth_loop_timer_cancel(l, ia);
	run_until(l, &f, 1);
	assert_string_equal(f.order, "b");
	/* well past a's time: it never fires */
	sleep_ms(10);
	assert_int_equal(hearth_loop_run_once(l, 0), 0);
	assert_string_equal(f.order, "b");
	/* cancelling a fired, a cancelled or an unknown id is fine */
	hearth_loop_timer_cancel(l, ib);
	hearth_loop_timer_cancel(l, ia);
	hearth_loop_timer_cancel(l, 9999);
	assert_int_equal(hearth_loop_timer_move(l, ia, now), -ENOENT);
	hearth_loop_free(l);
}

static void
test_loop_timer_move(void **state)
{
	struct fired f = {0};
	struct timer_arg a = {&f, 'a'}, b = {&f, 'b'};
	hearth_loop *l;
	int64_t now = hearth_mono_ms(), t;
	int ia, ib;

	assert_int_equal(hearth_loop_new(&l), 0);
	ia = hearth_loop_timer(l, now + 60000, on_timer, &a);
	ib = hearth_loop_timer(l, now + 5, on_timer, &b);
	/* sooner: a now fires first; later: b waits */
	assert_int_equal(hearth_loop_timer_move(l, ia, now + 2), 0);
	assert_int_equal(hearth_loop_timer_move(l, ib, now + 60000), 0);
	run_until(l, &f, 1);
	assert_string_equal(f.order, "a");
	t = hearth_mono_ms();
	assert_int_equal(hearth_loop_run_once(l, 20), 0);
	assert_string_equal(f.order, "a");
	assert_true(hearth_mono_ms() - t >= 15); /* it waited for max_wait, not for b */
	/* and back */
	assert_int_equal(hearth_loop_timer_move(l, ib, hearth_mono_ms()), 0);
	assert_int_equal(hearth_loop_run_once(l, 200), 0);
	assert_string_equal(f.order, "ab");
	assert_int_equal(hearth_loop_timer_move(l, 12345, now), -ENOENT);
	hearth_loop_free(l);
}

static void
test_loop_pipe_fd(void **state)
{
	struct fired f = {0};
	hearth_loop *l;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(hearth_loop_new(&l), 0);
	assert_int_equal(hearth_loop_watch(l, p[0], EPOLLIN, on_readable, &f), 0);

	/* nothing to read: run_once waits max_wait and calls nothing */
	assert_int_equal(hearth_loop_run_once(l, 5), 0);
	assert_int_equal(f.reads, 0);

	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(hearth_loop_run_once(l, 1000), 0);
	assert_int_equal(f.reads, 1);
	assert_int_equal(f.fd, p[0]);
	assert_true(f.events & EPOLLIN);

	/* unwatched: the byte stays unread */
	assert_int_equal(hearth_loop_unwatch(l, p[0]), 0);
	assert_int_equal(hearth_loop_unwatch(l, p[0]), -ENOENT);
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_int_equal(hearth_loop_run_once(l, 5), 0);
	assert_int_equal(f.reads, 1);
	/* watched again, it is read */
	assert_int_equal(hearth_loop_watch(l, p[0], EPOLLIN, on_readable, &f), 0);
	assert_int_equal(hearth_loop_run_once(l, 1000), 0);
	assert_int_equal(f.reads, 2);
	assert_string_equal(f.order, "xy");
	/* watching an fd that is not open fails with an error, not a crash */
	assert_true(hearth_loop_watch(l, 999, EPOLLIN, on_readable, &f) < 0);

	hearth_loop_free(l);
	close(p[0]);
	close(p[1]);
}

struct unwatcher {
	hearth_loop *l;
	int other; /* the fd this callback removes */
	int *calls;
};

static void
on_unwatch_other(void *ud, int fd, uint32_t events)
{
	struct unwatcher *u = ud;
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
	(*u->calls)++;
	assert_int_equal(hearth_loop_unwatch(u->l, u->other), 0);
}

static void
test_loop_callback_unwatches_other(void **state)
{
	hearth_loop *l;
	int p1[2], p2[2], calls = 0;
	struct unwatcher u1, u2;

	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	assert_int_equal(hearth_loop_new(&l), 0);
	u1 = (struct unwatcher){l, p2[0], &calls};
	u2 = (struct unwatcher){l, p1[0], &calls};
	assert_int_equal(hearth_loop_watch(l, p1[0], EPOLLIN, on_unwatch_other, &u1), 0);
	assert_int_equal(hearth_loop_watch(l, p2[0], EPOLLIN, on_unwatch_other, &u2), 0);
	/* both ready in one turn; whichever runs first removes the other, which
	 * must then not be called */
	assert_int_equal(write(p1[1], "a", 1), 1);
	assert_int_equal(write(p2[1], "b", 1), 1);
	assert_int_equal(hearth_loop_run_once(l, 1000), 0);
	assert_int_equal(calls, 1);
	hearth_loop_free(l);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static void
test_loop_turn_hook(void **state)
{
	struct fired f = {0};
	struct timer_arg a = {&f, 'a'};
	hearth_loop *l;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(hearth_loop_new(&l), 0);
	hearth_loop_on_turn(l, on_turn, &f);
	assert_int_equal(hearth_loop_run_once(l, 0), 0);
	assert_int_equal(hearth_loop_run_once(l, 0), 0);
	assert_int_equal(f.turns, 2);

	/* an fd and a timer in the same turn: the hook still runs once, last */
	assert_int_equal(hearth_loop_watch(l, p[0], EPOLLIN, on_readable, &f), 0);
	hearth_loop_timer(l, hearth_mono_ms(), on_timer, &a);
	assert_int_equal(write(p[1], "r", 1), 1);
	assert_int_equal(hearth_loop_run_once(l, 1000), 0);
	assert_int_equal(f.turns, 3);
	assert_string_equal(f.order, "||ra|");

	/* no hook: nothing called */
	hearth_loop_on_turn(l, NULL, NULL);
	assert_int_equal(hearth_loop_run_once(l, 0), 0);
	assert_int_equal(f.turns, 3);
	hearth_loop_free(l);
	close(p[0]);
	close(p[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bus_fifo),
	        cmocka_unit_test(test_bus_drain_clears),
	        cmocka_unit_test(test_bus_post_during_drain),
	        cmocka_unit_test(test_bus_grows_when_wrapped),
	        cmocka_unit_test(test_loop_timers_in_due_order),
	        cmocka_unit_test(test_loop_overdue_timers_in_due_order),
	        cmocka_unit_test(test_loop_timer_cancel),
	        cmocka_unit_test(test_loop_timer_move),
	        cmocka_unit_test(test_loop_pipe_fd),
	        cmocka_unit_test(test_loop_callback_unwatches_other),
	        cmocka_unit_test(test_loop_turn_hook),
	};

	hearth_alloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
