/*
 * loop.c - epoll event loop with one-shot timers (see loop.h).
 *
 * Watchers are kept in a small array indexed by position (a hub watches a
 * handful of descriptors: MQTT, signals, the control socket and its
 * clients). Timers are a small unsorted array: the next one is found by a
 * scan, which beats a heap at the dozen timers the hub arms.
 */
#include "runtime/loop.h"

#include "platform/alloc.h"
#include "platform/clock.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MAX_EVENTS 32

struct watcher {
	int fd;
	hearth_io_fn fn;
	void *ud;
};

struct timer {
	int id;
	int64_t due;
	hearth_timer_fn fn;
	void *ud;
};

struct hearth_loop {
	int ep;
	struct watcher *w;
	int nw, capw;
	struct timer *t;
	int nt, capt;
	int next_id;
	hearth_turn_fn turn;
	void *turn_ud;
};

int
hearth_loop_new(hearth_loop **out)
{
	hearth_loop *l = hearth_calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int e = -errno;

		hearth_free(l);
		return e;
	}
	*out = l;
	return 0;
}

void
hearth_loop_free(hearth_loop *l)
{
	if (!l)
		return;
	close(l->ep);
	hearth_free(l->w);
	hearth_free(l->t);
	hearth_free(l);
}

static struct watcher *
find_watcher(hearth_loop *l, int fd)
{
	for (int i = 0; i < l->nw; i++)
		if (l->w[i].fd == fd)
			return &l->w[i];
	return NULL;
}

int
hearth_loop_watch(hearth_loop *l, int fd, uint32_t events, hearth_io_fn fn, void *ud)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	struct watcher *w = find_watcher(l, fd);

	if (w) {
		w->fn = fn;
		w->ud = ud;
		return epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
	}
	if (l->nw == l->capw) {
		int ncap = l->capw ? l->capw * 2 : 8;
		struct watcher *nw = hearth_realloc(l->w, (size_t)ncap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		l->w = nw;
		l->capw = ncap;
	}
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	l->w[l->nw++] = (struct watcher){.fd = fd, .fn = fn, .ud = ud};
	return 0;
}

int
hearth_loop_unwatch(hearth_loop *l, int fd)
{
	struct watcher *w = find_watcher(l, fd);

	if (!w)
		return -ENOENT;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	*w = l->w[--l->nw];
	return 0;
}

int
hearth_loop_timer(hearth_loop *l, int64_t due, hearth_timer_fn fn, void *ud)
{
	if (l->nt == l->capt) {
		int ncap = l->capt ? l->capt * 2 : 8;
		struct timer *nt = hearth_realloc(l->t, (size_t)ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		l->t = nt;
		l->capt = ncap;
	}
	if (++l->next_id <= 0)
		l->next_id = 1;
	l->t[l->nt++] = (struct timer){.id = l->next_id, .due = due, .fn = fn, .ud = ud};
	return l->next_id;
}

int
hearth_loop_timer_move(hearth_loop *l, int id, int64_t due)
{
	for (int i = 0; i < l->nt; i++) {
		if (l->t[i].id == id) {
			l->t[i].due = due;
			return 0;
		}
	}
	return -ENOENT;
}

void
hearth_loop_timer_cancel(hearth_loop *l, int id)
{
	for (int i = 0; i < l->nt; i++) {
		if (l->t[i].id == id) {
			l->t[i] = l->t[--l->nt];
			return;
		}
	}
}

void
hearth_loop_on_turn(hearth_loop *l, hearth_turn_fn fn, void *ud)
{
	l->turn = fn;
	l->turn_ud = ud;
}

static void
run_timers(hearth_loop *l)
{
	int64_t now =
	        hearth_mono_ms(); /* Overdue timers fire earliest first; a fired timer is removed before
	 * its callback, which may arm others. */
	for (;;) {
		struct timer t;
		int first = -1;

		for (int i = 0; i < l->nt; i++)
			if (l->t[i].due <= now && (first < 0 || l->t[i].due < l->t[first].due))
				first = i;
		if (first < 0)
			return;
		t = l->t[first];
		l->t[first] = l->t[--l->nt];
		t.fn(t.ud);
	}
}

int
hearth_loop_run_once(hearth_loop *l, int max_wait_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int64_t wait = max_wait_ms, now = hearth_mono_ms();
	int n;

	for (int i = 0; i < l->nt; i++) {
		int64_t d = l->t[i].due - now;

		if (d < 0)
			d = 0;
		if (wait < 0 || d < wait)
			wait = d;
	}
	n = epoll_wait(l->ep, ev, MAX_EVENTS, (int)wait);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		/* Look the watcher up again: an earlier callback may have removed it. */
		struct watcher *w = find_watcher(l, ev[i].data.fd);

		if (w)
			w->fn(w->ud, ev[i].data.fd, ev[i].events);
	}
	run_timers(l);
	if (l->turn)
		l->turn(l->turn_ud);
	return 0;
}
