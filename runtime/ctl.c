/*
 * ctl.c - the control socket (see ctl.h). Clients are read without
 * blocking the loop; a request is capped at 4 KiB. The answer is written
 * with a short send timeout: hearthctl reads it at once, and a client that
 * does not cannot stall the hub for long.
 */
#include "runtime/ctl.h"

#include "platform/alloc.h"
#include "platform/json.h"
#include "platform/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define REQ_MAX     (64 * 1024) /* a hard rule travels inline in constraints.add */
#define MAX_CLIENTS 16

struct client {
	int fd;
	size_t len;
	char buf[REQ_MAX];
};

struct hearth_ctl {
	hearth_loop *loop;
	int fd;
	char *path;
	hearth_ctl_fn fn;
	void *ud;
	struct client *clients[MAX_CLIENTS];
};

static void
drop_client(hearth_ctl *c, struct client *cl)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	hearth_loop_unwatch(c->loop, cl->fd);
	close(cl->fd);
	hearth_free(cl);
}

static void
send_all(int fd, const char *s, size_t n)
{
	struct timeval tv = {.tv_sec = 1};
	int flags = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void
answer(hearth_ctl *c, struct client *cl)
{
	cJSON *req = NULL, *res = NULL, *ans = cJSON_CreateObject();
	char err[256] = "", jwhy[96];
	const char *cmd = NULL;
	char *text;

	if (!ans)
		return;
	if (hearth_json_parse(cl->buf, cl->len, &req, jwhy, sizeof(jwhy)))
		snprintf(err, sizeof(err), "bad request: %s", jwhy);
	else if (!cJSON_IsObject(req) || hearth_json_get_str(req, "cmd", &cmd))
		snprintf(err, sizeof(err), "bad request: expected {\"cmd\":\"...\"}");
	else
		res = c->fn(c->ud, cmd, req, err, sizeof(err));
	cJSON_AddBoolToObject(ans, "ok", res != NULL);
	if (res)
		cJSON_AddItemToObject(ans, "result", res);
	else
		cJSON_AddStringToObject(ans, "error", err[0] ? err : "failed");
	text = hearth_json_print(ans);
	if (text) {
		send_all(cl->fd, text, strlen(text));
		send_all(cl->fd, "\n", 1);
		hearth_free(text);
	}
	cJSON_Delete(ans);
	cJSON_Delete(req);
}

static void
on_client(void *ud, int fd, uint32_t events)
{
	hearth_ctl *c = ud;
	struct client *cl = NULL;
	char *nl;
	ssize_t n;

	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i] && c->clients[i]->fd == fd)
			cl = c->clients[i];
	if (!cl)
		return;
	n = read(fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(c, cl);
		return;
	}
	cl->len += (size_t)n;
	cl->buf[cl->len] = '\0';
	nl = memchr(cl->buf, '\n', cl->len);
	if (!nl && cl->len < sizeof(cl->buf) - 1)
		return;
	if (nl)
		cl->len = (size_t)(nl - cl->buf);
	answer(c, cl);
	drop_client(c, cl);
}

static void
on_accept(void *ud, int fd, uint32_t events)
{
	hearth_ctl *c = ud;
	struct client *cl;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int slot = -1;

	if (cfd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
		if (!c->clients[i])
			slot = i;
	cl = slot >= 0 ? hearth_calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		close(cfd);
		return;
	}
	cl->fd = cfd;
	if (hearth_loop_watch(c->loop, cfd, EPOLLIN, on_client, c)) {
		close(cfd);
		hearth_free(cl);
		return;
	}
	c->clients[slot] = cl;
}

int
hearth_ctl_open(hearth_loop *loop, const char *path, hearth_ctl_fn fn, void *ud, hearth_ctl **out,
                char *why, size_t wl)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	hearth_ctl *c;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, wl,
		         "control socket path %s is too long (max %zu): use a shorter --data", path,
		         sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	c = hearth_calloc(1, sizeof(*c));
	if (!c || !(c->path = hearth_strdup(path))) {
		hearth_free(c);
		return -ENOMEM;
	}
	c->loop = loop;
	c->fn = fn;
	c->ud = ud;
	memcpy(sa.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto fail_errno;
	/* The data dir is locked by the caller, so an existing socket is stale. */
	unlink(path);
	mode_t old = umask(0177);

	rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || listen(c->fd, 16))
		goto fail_errno;
	rc = hearth_loop_watch(loop, c->fd, EPOLLIN, on_accept, c);
	if (rc) {
		snprintf(why, wl, "control socket %s: %s", path, strerror(-rc));
		goto fail;
	}
	*out = c;
	return 0;
fail_errno:
	rc = -errno;
	snprintf(why, wl, "control socket %s: %s", path, strerror(errno));
fail:
	if (c->fd >= 0)
		close(c->fd);
	hearth_free(c->path);
	hearth_free(c);
	return rc;
}

void
hearth_ctl_close(hearth_ctl *c)
{
	if (!c)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i])
			drop_client(c, c->clients[i]);
	hearth_loop_unwatch(c->loop, c->fd);
	close(c->fd);
	unlink(c->path);
	hearth_free(c->path);
	hearth_free(c);
}
