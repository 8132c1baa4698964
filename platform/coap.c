/*
 * coap.c - the libcoap adapter (see coap.h). It owns the libcoap context, the
 * client sessions (one per host:port), the requests in flight (by token),
 * the observations and the deferred exchanges, and translates libcoap's
 * handlers, codes and failures into hearth's callbacks and errors. libcoap
 * is built with epoll: its descriptor is one epoll set (sockets and its own
 * timer) that the caller's loop watches, and coap_io_process(COAP_IO_NO_WAIT)
 * does what is ready without waiting. A deferred exchange is libcoap's async
 * state: registered with the timeout as its delay, triggered by
 * hearth_coap_answer(); libcoap then calls our handler again with a copy of
 * the request (a new message id), which sends the separate response. It
 * never runs a thread and never blocks: URIs take numeric addresses only.
 */
#include "platform/coap.h"

#include "platform/alloc.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/log.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_MAX 8

struct res {
	struct res *next;
	hearth_coap *c;
	char *path;
	hearth_coap_handler fn;
	void *ud;
};

/* A request we answer later (libcoap async state's app data). */
struct deferred {
	struct deferred *next;
	uint64_t handle;
	coap_async_t *async;
	coap_mid_t mid; /* of the original request: a retransmission has it too */
	bool answered;
	int code, format;
	uint8_t *data;
	size_t len;
};

/* A PUT or an observation in flight, found again by its token. */
struct pending {
	struct pending *next;
	coap_session_t *session;
	uint8_t token[TOKEN_MAX];
	size_t toklen;
	bool observe;
	char *tag;
};

struct sess {
	struct sess *next;
	char key[80]; /* "host|port" */
	coap_session_t *s;
};

struct hearth_coap {
	coap_context_t *ctx;
	struct hearth_coap_cb cb;
	struct res *res;
	struct deferred *deferred;
	struct pending *pending;
	struct sess *sess;
	bool kick;   /* something was queued outside process(): run it soon */
	int next_ms; /* from the last process() */
};

struct hearth_coap_exchange {
	hearth_coap *c;
	coap_resource_t *r;
	coap_session_t *s;
	const coap_pdu_t *req;
	const coap_string_t *query;
	coap_pdu_t *resp;
	bool done;
};

/* ==== Helpers ==== */

static int
code_of(coap_pdu_code_t code)
{
	return COAP_RESPONSE_CLASS(code) * 100 + (code & 0x1f);
}

static coap_pdu_code_t
pdu_code(int code)
{
	return (coap_pdu_code_t)COAP_RESPONSE_CODE(code);
}

static void
release_copy(coap_session_t *s, void *p)
{
	hearth_free(p);
}

/* Set response code and (large) body; the body is copied. */
static void
fill_response(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
              const coap_string_t *query, coap_pdu_t *resp, int code, int format,
              const void *payload, size_t len)
{
	coap_pdu_set_code(resp, pdu_code(code));
	if (payload && len > 0) {
		uint8_t *copy = hearth_memdup(payload, len);

		if (!copy) {
			coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
			return;
		}
		if (!coap_add_data_large_response(
		            r, s, req, resp, query,
		            (uint16_t)(format >= 0 ? format : HEARTH_COAP_FORMAT_TEXT), -1, 0, len,
		            copy, release_copy, copy))
			coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
	}
}

static void
unlink_deferred(hearth_coap *c, struct deferred *d)
{
	for (struct deferred **pp = &c->deferred; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	hearth_free(d->data);
	hearth_free(d);
}

static void
unlink_pending(hearth_coap *c, struct pending *p)
{
	for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	hearth_free(p->tag);
	hearth_free(p);
}

static struct pending *
find_pending(hearth_coap *c, coap_session_t *s, coap_bin_const_t tok)
{
	for (struct pending *p = c->pending; p; p = p->next)
		if (p->session == s && p->toklen == tok.length &&
		    !memcmp(p->token, tok.s, tok.length))
			return p;
	return NULL;
}

/* libcoap's own log lines, at debug. */
static void
on_coap_log(coap_log_t level, const char *message)
{
	size_t n = strlen(message);

	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	LOG_DEBUG("coap", "libcoap: %.*s", (int)n, message);
}

/* ==== Server ==== */

static void
on_request(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *query,
           coap_pdu_t *resp)
{
	struct res *res = coap_resource_get_userdata(r);
	hearth_coap *c = res->c;
	hearth_coap_exchange ex = {c, r, s, req, query, resp, false};
	struct hearth_coap_request rq = {0};
	coap_async_t *as = coap_find_async(s, coap_pdu_get_token(req));
	coap_opt_iterator_t it;
	coap_opt_t *opt;
	const uint8_t *data = NULL;
	size_t len = 0, offset = 0, total = 0;

	if (as) {
		struct deferred *d = coap_async_get_app_data(as);

		if (!d || coap_pdu_get_mid(req) == d->mid)
			return; /* a retransmission of a deferred request: empty ACK again */
		/* libcoap fired the async state (answered, or the timeout): the
		 * separate response; libcoap frees the state on return. */
		if (d->answered)
			fill_response(r, s, req, query, resp, d->code, d->format, d->data, d->len);
		else
			fill_response(r, s, req, query, resp, 503, HEARTH_COAP_FORMAT_TEXT,
			              "no answer in time", 17);
		coap_async_set_app_data(as, NULL);
		unlink_deferred(c, d);
		return;
	}
	rq.method = (int)coap_pdu_get_code(req);
	rq.path = res->path;
	rq.format = HEARTH_COAP_FORMAT_NONE;
	opt = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &it);
	if (opt)
		rq.format = (int)coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
	if (coap_get_data_large(req, &len, &data, &offset, &total)) {
		rq.payload = data;
		rq.len = len;
	}
	if (!coap_print_addr(coap_session_get_addr_remote(s), (uint8_t *)rq.peer,
	                     sizeof(rq.peer) - 1))
		snprintf(rq.peer, sizeof(rq.peer), "?");
	res->fn(res->ud, &rq, &ex);
	if (!ex.done)
		fill_response(r, s, req, query, resp, 500, HEARTH_COAP_FORMAT_TEXT, "unanswered",
		              10);
}

void
hearth_coap_respond(hearth_coap_exchange *ex, int code, int format, const void *payload, size_t len)
{
	if (ex->done)
		return;
	ex->done = true;
	fill_response(ex->r, ex->s, ex->req, ex->query, ex->resp, code, format, payload, len);
}

uint64_t
hearth_coap_defer(hearth_coap_exchange *ex, int timeout_ms)
{
	struct deferred *d;
	coap_tick_t delay;

	if (ex->done)
		return 0;
	d = hearth_calloc(1, sizeof(*d));
	if (!d)
		return 0;
	while (!d->handle)
		if (hearth_random(&d->handle, sizeof(d->handle)))
			goto fail;
	delay = (coap_tick_t)(timeout_ms > 0 ? timeout_ms : 1) * COAP_TICKS_PER_SECOND / 1000;
	d->async = coap_register_async(ex->s, ex->req, delay ? delay : 1);
	if (!d->async)
		goto fail;
	d->mid = coap_pdu_get_mid(ex->req);
	coap_async_set_app_data(d->async, d);
	d->next = ex->c->deferred;
	ex->c->deferred = d;
	ex->done = true; /* no code: libcoap sends the empty ACK */
	return d->handle;
fail:
	hearth_free(d);
	return 0;
}

int
hearth_coap_answer(hearth_coap *c, uint64_t handle, int code, int format, const void *payload,
                   size_t len)
{
	struct deferred *d;

	for (d = c->deferred; d && d->handle != handle; d = d->next)
		;
	if (!d || d->answered)
		return -ENOENT;
	if (payload && len > 0 && !(d->data = hearth_memdup(payload, len)))
		return -ENOMEM;
	d->len = d->data ? len : 0;
	d->code = code;
	d->format = format;
	d->answered = true;
	coap_async_trigger(d->async);
	c->kick = true;
	return 0;
}

int
hearth_coap_resource(hearth_coap *c, const char *path, hearth_coap_handler fn, void *ud)
{
	static const coap_request_t methods[] = {COAP_REQUEST_GET, COAP_REQUEST_POST,
	                                         COAP_REQUEST_PUT, COAP_REQUEST_DELETE};
	struct res *res = hearth_calloc(1, sizeof(*res));
	coap_resource_t *r;

	if (!res || !(res->path = hearth_strdup(path))) {
		hearth_free(res);
		return -ENOMEM;
	}
	/* libcoap keeps the path pointer: res owns the string and outlives r. */
	r = coap_resource_init(coap_make_str_const(res->path), 0);
	if (!r) {
		hearth_free(res->path);
		hearth_free(res);
		return -ENOMEM;
	}
	res->c = c;
	res->fn = fn;
	res->ud = ud;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		coap_register_request_handler(r, methods[i], on_request);
	coap_resource_set_userdata(r, res);
	coap_add_resource(c->ctx, r);
	res->next = c->res;
	c->res = res;
	return 0;
}

/* "[v6]:port" or "v4:port" into a socket address. */
static int
parse_addr(const char *spec, coap_address_t *a)
{
	char host[64];
	const char *colon;
	char *end;
	long port;
	size_t n;

	coap_address_init(a);
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		n = (size_t)(rb - spec - 1);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, n);
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || strchr(spec, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - spec);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec, n);
	}
	host[n] = '\0';
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 1 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET6, host, &a->addr.sin6.sin6_addr) == 1) {
		a->addr.sin6.sin6_family = AF_INET6;
		a->addr.sin6.sin6_port = htons((uint16_t)port);
		a->size = sizeof(a->addr.sin6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &a->addr.sin.sin_addr) == 1) {
		a->addr.sin.sin_family = AF_INET;
		a->addr.sin.sin_port = htons((uint16_t)port);
		a->size = sizeof(a->addr.sin);
		return 0;
	}
	return -EINVAL;
}

int
hearth_coap_listen(hearth_coap *c, const char *spec, char *why, size_t wl)
{
	coap_address_t a;

	if (parse_addr(spec, &a)) {
		snprintf(why, wl,
		         "coap.listen: expected [IPv6]:PORT or IPv4:PORT with a numeric address, "
		         "got \"%s\"",
		         spec);
		return HEARTH_E_CONFIG;
	}
	errno = 0;
	if (!coap_new_endpoint(c->ctx, &a, COAP_PROTO_UDP)) {
		int e = errno ? errno : EADDRINUSE;

		snprintf(why, wl, "cannot listen for CoAP on UDP %s: %s (set coap.listen)", spec,
		         strerror(e));
		return -e;
	}
	return 0;
}

/* ==== Client ==== */

static coap_session_t *
session_for(hearth_coap *c, const coap_uri_t *u, char *why, size_t wl)
{
	char host[64];
	coap_address_t a;
	struct sess *se;
	char key[80];

	if (u->host.length == 0 || u->host.length >= sizeof(host)) {
		snprintf(why, wl, "the URI needs a numeric host address");
		return NULL;
	}
	memcpy(host, u->host.s, u->host.length);
	host[u->host.length] = '\0';
	snprintf(key, sizeof(key), "%s|%u", host, u->port);
	for (se = c->sess; se; se = se->next)
		if (!strcmp(se->key, key))
			return se->s;
	coap_address_init(&a);
	if (inet_pton(AF_INET6, host, &a.addr.sin6.sin6_addr) == 1) {
		a.addr.sin6.sin6_family = AF_INET6;
		a.addr.sin6.sin6_port = htons(u->port);
		a.size = sizeof(a.addr.sin6);
	} else if (inet_pton(AF_INET, host, &a.addr.sin.sin_addr) == 1) {
		a.addr.sin.sin_family = AF_INET;
		a.addr.sin.sin_port = htons(u->port);
		a.size = sizeof(a.addr.sin);
	} else {
		snprintf(why, wl,
		         "host \"%s\" is not a numeric address (names are not looked up: that "
		         "could block the hub)",
		         host);
		return NULL;
	}
	se = hearth_calloc(1, sizeof(*se));
	if (!se) {
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	se->s = coap_new_client_session(c->ctx, NULL, &a, COAP_PROTO_UDP);
	if (!se->s) {
		snprintf(why, wl, "cannot open a CoAP session to %s", key);
		hearth_free(se);
		return NULL;
	}
	snprintf(se->key, sizeof(se->key), "%s", key);
	se->next = c->sess;
	c->sess = se;
	return se->s;
}

/* Build and send a request; registers it as pending under tag. */
static int
request(hearth_coap *c, coap_pdu_code_t code, const char *uri, bool observe, int format,
        const void *payload, size_t len, const char *tag, char *why, size_t wl)
{
	coap_optlist_t *opts = NULL;
	struct pending *p = NULL;
	coap_session_t *s;
	coap_pdu_t *pdu;
	coap_uri_t u;
	uint8_t buf[4];
	const char *seg, *end;

	if (coap_split_uri((const uint8_t *)uri, strlen(uri), &u) < 0 ||
	    u.scheme != COAP_URI_SCHEME_COAP) {
		snprintf(why, wl, "\"%s\" is not a coap:// URI (coaps is not supported)", uri);
		return -EINVAL;
	}
	if (!(s = session_for(c, &u, why, wl)))
		return -EINVAL;
	p = hearth_calloc(1, sizeof(*p));
	if (!p || !(p->tag = hearth_strdup(tag)))
		goto oom;
	pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(s),
	                    coap_session_max_pdu_size(s));
	if (!pdu)
		goto oom;
	coap_session_new_token(s, &p->toklen, p->token);
	coap_add_token(pdu, p->toklen, p->token);
	if (observe)
		coap_insert_optlist(&opts,
		                    coap_new_optlist(COAP_OPTION_OBSERVE,
		                                     coap_encode_var_safe(buf, sizeof(buf),
		                                                          COAP_OBSERVE_ESTABLISH),
		                                     buf));
	/* Uri-Path: one option per segment. */
	seg = (const char *)u.path.s;
	end = seg + u.path.length;
	while (seg && seg < end) {
		const char *slash = memchr(seg, '/', (size_t)(end - seg));
		size_t n = (size_t)((slash ? slash : end) - seg);

		if (n)
			coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_URI_PATH, n,
			                                            (const uint8_t *)seg));
		seg = slash ? slash + 1 : NULL;
	}
	if (format >= 0)
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_CONTENT_FORMAT,
		                                            coap_encode_var_safe(buf, sizeof(buf),
		                                                                 (unsigned)format),
		                                            buf));
	if (opts && !coap_add_optlist_pdu(pdu, &opts)) {
		coap_delete_optlist(opts);
		coap_delete_pdu(pdu);
		goto oom;
	}
	coap_delete_optlist(opts);
	if (payload && len > 0) {
		uint8_t *copy = hearth_memdup(payload, len);

		if (!copy || !coap_add_data_large_request(s, pdu, len, copy, release_copy, copy)) {
			hearth_free(copy);
			coap_delete_pdu(pdu);
			goto oom;
		}
	}
	p->session = s;
	p->observe = observe;
	p->next = c->pending;
	c->pending = p;
	if (coap_send(s, pdu) == COAP_INVALID_MID) {
		unlink_pending(c, p);
		snprintf(why, wl, "cannot send to %s", uri);
		return -EIO;
	}
	c->kick = true;
	return 0;
oom:
	if (p)
		hearth_free(p->tag);
	hearth_free(p);
	snprintf(why, wl, "out of memory");
	return -ENOMEM;
}

int
hearth_coap_put(hearth_coap *c, const char *uri, int format, const void *payload, size_t len,
                const char *tag, char *why, size_t wl)
{
	return request(c, COAP_REQUEST_CODE_PUT, uri, false, format, payload, len, tag, why, wl);
}

int
hearth_coap_observe(hearth_coap *c, const char *uri, const char *tag, char *why, size_t wl)
{
	hearth_coap_unobserve(c, tag);
	return request(c, COAP_REQUEST_CODE_GET, uri, true, HEARTH_COAP_FORMAT_NONE, NULL, 0, tag,
	               why, wl);
}

void
hearth_coap_unobserve(hearth_coap *c, const char *tag)
{
	for (struct pending *p = c->pending; p; p = p->next) {
		if (p->observe && !strcmp(p->tag, tag)) {
			unlink_pending(c, p);
			return;
		}
	}
}

bool
hearth_coap_observing(const hearth_coap *c, const char *tag)
{
	for (const struct pending *p = c->pending; p; p = p->next)
		if (p->observe && !strcmp(p->tag, tag))
			return true;
	return false;
}

static coap_response_t
on_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcvd, const coap_mid_t mid)
{
	hearth_coap *c = coap_get_app_data(coap_session_get_context(s));
	struct pending *p = find_pending(c, s, coap_pdu_get_token(rcvd));
	const uint8_t *data = NULL;
	size_t len = 0, offset = 0, total = 0;
	coap_opt_iterator_t it;
	char tag[HEARTH_COAP_TAG_MAX];
	bool observing;
	int code;

	if (!p)
		return COAP_RESPONSE_FAIL; /* stale: the RST ends a forgotten observation */
	code = code_of(coap_pdu_get_code(rcvd));
	coap_get_data_large(rcvd, &len, &data, &offset, &total);
	snprintf(tag, sizeof(tag), "%s", p->tag);
	if (!p->observe) {
		unlink_pending(c, p);
		if (c->cb.on_put)
			c->cb.on_put(c->cb.ud, tag, code, data, len);
		return COAP_RESPONSE_OK;
	}
	observing = code / 100 == 2 && coap_check_option(rcvd, COAP_OPTION_OBSERVE, &it);
	if (!observing)
		unlink_pending(c, p);
	if (c->cb.on_notify)
		c->cb.on_notify(c->cb.ud, tag, code, data, len, observing);
	return COAP_RESPONSE_OK;
}

static void
on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason,
        const coap_mid_t mid)
{
	hearth_coap *c = coap_get_app_data(coap_session_get_context(s));
	struct pending *p = sent ? find_pending(c, s, coap_pdu_get_token(sent)) : NULL;
	char tag[HEARTH_COAP_TAG_MAX];
	bool observe;
	int err = reason == COAP_NACK_TOO_MANY_RETRIES ? -ETIMEDOUT : -ECONNREFUSED;

	if (!p)
		return;
	snprintf(tag, sizeof(tag), "%s", p->tag);
	observe = p->observe;
	unlink_pending(c, p);
	if (observe && c->cb.on_notify)
		c->cb.on_notify(c->cb.ud, tag, err, NULL, 0, false);
	else if (!observe && c->cb.on_put)
		c->cb.on_put(c->cb.ud, tag, err, NULL, 0);
}

/* ==== Life cycle and loop ==== */

int
hearth_coap_new(const struct hearth_coap_cb *cb, hearth_coap **out)
{
	hearth_coap *c;

	*out = NULL;
	c = hearth_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	coap_startup();
	coap_set_log_handler(on_coap_log);
	/* Numbers, not LOG_DEBUG: log.h's macros take that name (7 is syslog's debug). */
	coap_set_log_level(hearth_log_level() >= HEARTH_LOG_TRACE ? 7 : LOG_WARNING);
	c->ctx = coap_new_context(NULL);
	if (!c->ctx)
		goto fail;
	if (coap_context_get_coap_fd(c->ctx) < 0) {
		LOG_ERR("coap", "this libcoap has no epoll support: CoAP cannot run in the loop");
		coap_free_context(c->ctx);
		goto fail;
	}
	c->cb = *cb;
	c->next_ms = -1;
	coap_set_app_data(c->ctx, c);
	coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	coap_register_response_handler(c->ctx, on_response);
	coap_register_nack_handler(c->ctx, on_nack);
	*out = c;
	return 0;
fail:
	hearth_free(c);
	coap_cleanup();
	return -ENOMEM;
}

void
hearth_coap_free(hearth_coap *c)
{
	if (!c)
		return;
	while (c->sess) {
		struct sess *se = c->sess;

		c->sess = se->next;
		coap_session_release(se->s);
		hearth_free(se);
	}
	/* Frees the resources, the async states and the sessions. */
	coap_free_context(c->ctx);
	while (c->deferred)
		unlink_deferred(c, c->deferred);
	while (c->pending)
		unlink_pending(c, c->pending);
	while (c->res) {
		struct res *r = c->res;

		c->res = r->next;
		hearth_free(r->path);
		hearth_free(r);
	}
	hearth_free(c);
	coap_cleanup();
}

int
hearth_coap_fd(const hearth_coap *c)
{
	return coap_context_get_coap_fd(c->ctx);
}

int
hearth_coap_process(hearth_coap *c)
{
	coap_tick_t now;
	unsigned int t;
	int rc;

	c->kick = false;
	rc = coap_io_process(c->ctx, COAP_IO_NO_WAIT);
	coap_ticks(&now);
	t = coap_io_prepare_epoll(c->ctx, now);
	c->next_ms = t == 0 ? -1 : (int)t;
	return rc < 0 ? -EIO : 0;
}

int
hearth_coap_next_ms(hearth_coap *c)
{
	return c->kick ? 0 : c->next_ms;
}
