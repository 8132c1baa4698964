/*
 * coap.h - hearth's CoAP adapter on libcoap, driven by the caller's event
 * loop: no libcoap thread, no blocking call. The caller watches
 * hearth_coap_fd() for reading and calls hearth_coap_process() when it is
 * readable and when hearth_coap_next_ms() has passed (retransmissions,
 * separate responses, idle sessions).
 *
 * Server: resources with one handler each (every method reaches it; the
 * handler answers at once, or defers and answers later with the handle it
 * got: a separate response, RFC 7252 5.2.2). Client: PUT a payload to a
 * coap:// URI and GET with Observe (RFC 7641); sessions are kept per
 * host:port. URIs must name their host by a numeric address (a name lookup
 * could block the loop). Bodies larger than one datagram go block-wise.
 *
 * Callbacks run inside hearth_coap_process(); they may call anything here
 * except hearth_coap_free().
 */
#ifndef HEARTH_PLATFORM_COAP_H
#define HEARTH_PLATFORM_COAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hearth_coap hearth_coap;
/* One request being answered (valid during the handler only). */
typedef struct hearth_coap_exchange hearth_coap_exchange;

/* Methods and response codes: a code is class * 100 + detail (205 is 2.05). */
enum hearth_coap_method {
	HEARTH_COAP_GET = 1,
	HEARTH_COAP_POST = 2,
	HEARTH_COAP_PUT = 3,
	HEARTH_COAP_DELETE = 4,
};

#define HEARTH_COAP_FORMAT_NONE -1
#define HEARTH_COAP_FORMAT_TEXT 0  /* text/plain; charset=utf-8 */
#define HEARTH_COAP_FORMAT_JSON 50 /* application/json */

#define HEARTH_COAP_TAG_MAX 80 /* a tag (what a PUT or an observation is for) is shorter */

/* A request to one of our resources; pointers valid during the handler. */
struct hearth_coap_request {
	int method;          /* enum hearth_coap_method, or another request code */
	const char *path;    /* the resource's path as registered ("intent") */
	const void *payload; /* the whole body (block-wise transfers reassembled) */
	size_t len;
	int format;    /* Content-Format, HEARTH_COAP_FORMAT_NONE when absent */
	char peer[64]; /* "[addr]:port" of the client, for logs */
};

/* A handler answers with hearth_coap_respond() or keeps the exchange open
 * with hearth_coap_defer(); if it does neither, the answer is 5.00. */
typedef void (*hearth_coap_handler)(void *ud, const struct hearth_coap_request *req,
                                    hearth_coap_exchange *ex);

struct hearth_coap_cb {
	/* A PUT got its answer (code, e.g. 204), or none came: code is a
	 * negative error (-ETIMEDOUT after the retransmissions, -ECONNREFUSED
	 * on a reset or ICMP error). tag: as given to hearth_coap_put(). */
	void (*on_put)(void *ud, const char *tag, int code, const void *payload, size_t len);
	/* An observed resource sent a representation: the first answer and each
	 * notification. observing is false when the observation is over (the
	 * server answered without Observe, with an error code, or not at all:
	 * code < 0); the caller may observe again later. */
	void (*on_notify)(void *ud, const char *tag, int code, const void *payload, size_t len,
	                  bool observing);
	void *ud;
};

/* Make a context (libcoap's own logs go to log.h at debug). Returns 0 or a
 * negative error; the caller frees it with hearth_coap_free (which cancels
 * every exchange, observation and session). */
int hearth_coap_new(const struct hearth_coap_cb *cb, hearth_coap **out);
void hearth_coap_free(hearth_coap *c);

/* Listen on UDP at spec: "[v6]:port", "v4:port" or "[::]:port" (all
 * addresses). Returns 0, or a negative error with a reason in why. */
int hearth_coap_listen(hearth_coap *c, const char *spec, char *why, size_t why_len);
/* Serve path ("intent", "status") with fn; every method reaches fn. */
int hearth_coap_resource(hearth_coap *c, const char *path, hearth_coap_handler fn, void *ud);

/* Answer now. payload is copied. format: HEARTH_COAP_FORMAT_*. */
void hearth_coap_respond(hearth_coap_exchange *ex, int code, int format, const void *payload,
                         size_t len);
/* Answer later: the client gets an empty ACK now and the answer when
 * hearth_coap_answer(handle) is called, or 5.03 after timeout_ms. Returns
 * the handle (an unguessable non-zero number), or 0 when it cannot defer
 * (then answer now). */
uint64_t hearth_coap_defer(hearth_coap_exchange *ex, int timeout_ms);
/* Give a deferred exchange its answer (payload copied). Returns 0, or
 * -ENOENT when the handle is unknown or already answered or expired. */
int hearth_coap_answer(hearth_coap *c, uint64_t handle, int code, int format, const void *payload,
                       size_t len);

/* PUT payload to uri ("coap://[fd00::7]:5683/lamp"); tag (copied) comes
 * back in on_put. Returns 0 when sent, or a negative error with a reason. */
int hearth_coap_put(hearth_coap *c, const char *uri, int format, const void *payload, size_t len,
                    const char *tag, char *why, size_t why_len);
/* GET uri with Observe; representations come to on_notify with tag. One
 * observation per tag: observing again replaces (and cancels) the previous
 * one. Returns 0 when sent, or a negative error with a reason. */
int hearth_coap_observe(hearth_coap *c, const char *uri, const char *tag, char *why,
                        size_t why_len);
/* Forget the observation of tag (the server's next notification is reset). */
void hearth_coap_unobserve(hearth_coap *c, const char *tag);
bool hearth_coap_observing(const hearth_coap *c, const char *tag);

int hearth_coap_fd(const hearth_coap *c);
/* Do what is due: read datagrams, retransmit, send separate responses.
 * Returns 0 or a negative error. */
int hearth_coap_process(hearth_coap *c);
/* Milliseconds until hearth_coap_process() must run again; -1: only when
 * the descriptor is readable. */
int hearth_coap_next_ms(hearth_coap *c);

#endif
