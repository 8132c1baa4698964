/*
 * loop.h - the one event loop: epoll over file descriptors, plus one-shot
 * timers on the monotonic clock. Single thread; callbacks run to completion.
 * Signals arrive as a file descriptor (signalfd) like everything else.
 */
#ifndef HEARTH_RUNTIME_LOOP_H
#define HEARTH_RUNTIME_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

typedef struct hearth_loop hearth_loop;

typedef void (*hearth_io_fn)(void *ud, int fd, uint32_t events);
typedef void (*hearth_timer_fn)(void *ud);
/* Called once per turn, after the ready callbacks and timers, before waiting. */
typedef void (*hearth_turn_fn)(void *ud);

int hearth_loop_new(hearth_loop **out);
void hearth_loop_free(hearth_loop *l);

/* Watch fd for events (EPOLLIN / EPOLLOUT); again to change the events. */
int hearth_loop_watch(hearth_loop *l, int fd, uint32_t events, hearth_io_fn fn, void *ud);
int hearth_loop_unwatch(hearth_loop *l, int fd);

/* Arm a one-shot timer at mono ms `due`; returns its id (> 0) or a negative
 * error. Re-arming an id moves it; cancelling a fired or unknown id is fine. */
int hearth_loop_timer(hearth_loop *l, int64_t due, hearth_timer_fn fn, void *ud);
int hearth_loop_timer_move(hearth_loop *l, int id, int64_t due);
void hearth_loop_timer_cancel(hearth_loop *l, int id);

void hearth_loop_on_turn(hearth_loop *l, hearth_turn_fn fn, void *ud);
/* Run one turn: wait (at most max_wait_ms, -1 = until something happens),
 * run what is ready, then the turn hook. Returns 0 or a negative error. */
int hearth_loop_run_once(hearth_loop *l, int max_wait_ms);

#endif
