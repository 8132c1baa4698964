/*
 * ecosystem.c - the device file, the helpers the bindings share, and the
 * object the hub drives them through (see ecosystem.h).
 *
 * hearth_eco owns the device file's tree and the bindings the configuration
 * enables; it never publishes or subscribes itself (the hub does, from what
 * it returns and through the subscribe callback), so everything here runs
 * without a broker.
 */
#include "runtime/ecosystem.h"

#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "runtime/config.h"
#include "runtime/ha.h"
#include "runtime/z2m.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVFILE_MAX (1 << 20)

/* ==== Messages to publish ==== */

int
hearth_pubs_add(struct hearth_pubs *l, const char *topic, const char *payload)
{
	char *t, *p;

	if (l->n >= HEARTH_PUBS_MAX)
		return HEARTH_E_FULL;
	t = hearth_strdup(topic);
	p = hearth_strdup(payload);
	if (!t || !p) {
		hearth_free(t);
		hearth_free(p);
		return -ENOMEM;
	}
	l->p[l->n].topic = t;
	l->p[l->n].payload = p;
	l->p[l->n].len = (int)strlen(p);
	l->n++;
	return 0;
}

void
hearth_pubs_clear(struct hearth_pubs *l)
{
	for (int i = 0; i < l->n; i++) {
		hearth_free(l->p[i].topic);
		hearth_free(l->p[i].payload);
	}
	memset(l, 0, sizeof(*l));
}

/* ==== The device file ==== */

int
hearth_devfile_load(const char *path, cJSON **out, char *why, size_t wl)
{
	struct stat sb;
	char *buf = NULL, jwhy[96];
	cJSON *root = NULL;
	const cJSON *e;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, wl, "devices_file %s: cannot open: %s", path, strerror(errno));
		return HEARTH_E_CONFIG;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > DEVFILE_MAX) {
		snprintf(why, wl, "devices_file %s: not a regular file of at most 1 MiB", path);
		close(fd);
		return HEARTH_E_CONFIG;
	}
	if (!(buf = hearth_malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		snprintf(why, wl, "devices_file %s: cannot read it", path);
		hearth_free(buf);
		return HEARTH_E_CONFIG;
	}
	rc = hearth_json_parse(buf, (size_t)n, &root, jwhy, sizeof(jwhy));
	hearth_free(buf);
	if (rc) {
		snprintf(why, wl, "devices_file %s: %s", path,
		         rc == HEARTH_E_BAD_JSON ? jwhy : hearth_strerror(rc));
		return rc == HEARTH_E_BAD_JSON ? HEARTH_E_CONFIG : rc;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(why, wl,
		         "devices_file %s: expected a JSON object {\"<device id>\": "
		         "{\"room\": \"living\"}}",
		         path);
		goto bad;
	}
	cJSON_ArrayForEach(e, root)
	{
		const char *room;
		int r;

		if (!hearth_id_valid_str(e->string)) {
			snprintf(why, wl,
			         "devices_file %s: \"%.64s\" is not a device id (1-64 characters "
			         "of A-Z a-z 0-9 _ . -)",
			         path, e->string);
			goto bad;
		}
		if (!cJSON_IsObject(e)) {
			snprintf(why, wl, "devices_file %s: %s: expected an object, got %s", path,
			         e->string, hearth_json_type_name(e));
			goto bad;
		}
		r = hearth_json_get_str(e, "room", &room);
		if (r == HEARTH_E_INVALID || (!r && (!room[0] || strlen(room) > 64))) {
			snprintf(
			        why, wl,
			        "devices_file %s: %s.room: expected a string of 1 to 64 characters",
			        path, e->string);
			goto bad;
		}
	}
	*out = root;
	return 0;
bad:
	cJSON_Delete(root);
	return HEARTH_E_CONFIG;
}

const char *
hearth_devfile_room(void *ud, const char *id)
{
	const char *room;

	if (!ud || hearth_json_get_str(hearth_json_obj(ud, id), "room", &room))
		return NULL;
	return room;
}

/* ==== Helpers ==== */

char *
hearth_eco_text(const void *payload, int len)
{
	char *s = hearth_malloc((size_t)(len > 0 ? len : 0) + 1);

	if (!s)
		return NULL;
	if (len > 0)
		memcpy(s, payload, (size_t)len);
	s[len > 0 ? len : 0] = '\0';
	return s;
}

int
hearth_eco_parse_avail(const void *payload, int len, const char *on, const char *off, bool *online)
{
	char buf[128];
	cJSON *js = NULL;
	const char *s = NULL;
	int rc = HEARTH_E_INVALID;

	if (len <= 0 || len >= (int)sizeof(buf))
		return HEARTH_E_INVALID;
	memcpy(buf, payload, (size_t)len);
	buf[len] = '\0';
	if (!strcmp(buf, on) || !strcmp(buf, off)) {
		*online = !strcmp(buf, on);
		return 0;
	}
	if (hearth_json_parse(buf, (size_t)len, &js, NULL, 0))
		return HEARTH_E_INVALID;
	if (cJSON_IsString(js))
		s = js->valuestring;
	else if (hearth_json_get_str(js, "state", &s))
		s = NULL;
	if (s && (!strcmp(s, on) || !strcmp(s, off))) {
		*online = !strcmp(s, on);
		rc = 0;
	}
	cJSON_Delete(js);
	return rc;
}

void
hearth_eco_post(const hearth_outbox *out, enum hearth_msg_type type, const char *id, cJSON *body,
                bool flag)
{
	hearth_msg m = {.type = type, .flag = flag, .body = body};

	snprintf(m.id, sizeof(m.id), "%s", id);
	hearth_post(out, &m);
}

/* ==== The bindings, as the hub drives them ==== */

struct hearth_eco {
	cJSON *devfile;
	hearth_z2m *z2m;
	hearth_ha *ha;
	hearth_subscribe_fn subscribe;
	void *sub_ud;
};

int
hearth_eco_new(const struct hearth_config *cfg, const hearth_outbox *out,
               hearth_subscribe_fn subscribe, void *sub_ud, hearth_eco **ep, char *why, size_t wl)
{
	hearth_eco *e;
	int rc = 0;

	*ep = NULL;
	if (!(e = hearth_calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->subscribe = subscribe;
	e->sub_ud = sub_ud;
	if (cfg->devices_file &&
	    (rc = hearth_devfile_load(cfg->devices_file, &e->devfile, why, wl)))
		goto fail;
	if (cfg->z2m_enabled) {
		struct hearth_z2m_opts zo = {
		        .base_topic = cfg->z2m_base_topic,
		        .max_payload = cfg->max_payload,
		        .max_devices_payload = cfg->z2m_max_devices_payload,
		        .room = hearth_devfile_room,
		        .room_ud = e->devfile,
		};

		if ((rc = hearth_z2m_new(&zo, out, &e->z2m))) {
			snprintf(why, wl, "zigbee2mqtt.base_topic \"%s\": %s", cfg->z2m_base_topic,
			         rc == -ENOMEM ? "out of memory"
			                       : "expected a topic without + # or a trailing /");
			goto fail;
		}
	}
	if (cfg->ha_enabled) {
		struct hearth_ha_opts ho = {
		        .prefix = cfg->ha_prefix,
		        .max_payload = cfg->max_payload,
		        .room = hearth_devfile_room,
		        .room_ud = e->devfile,
		        .subscribe = subscribe,
		        .sub_ud = sub_ud,
		        .skip_z2m = cfg->z2m_enabled,
		};

		if ((rc = hearth_ha_new(&ho, out, &e->ha))) {
			snprintf(why, wl, "homeassistant.prefix \"%s\": %s", cfg->ha_prefix,
			         rc == -ENOMEM ? "out of memory"
			                       : "expected a topic without + # or a trailing /");
			goto fail;
		}
	}
	*ep = e;
	return 0;
fail:
	hearth_eco_free(e);
	return rc;
}

void
hearth_eco_free(hearth_eco *e)
{
	if (!e)
		return;
	hearth_z2m_free(e->z2m);
	hearth_ha_free(e->ha);
	cJSON_Delete(e->devfile);
	hearth_free(e);
}

bool
hearth_eco_runs(const hearth_eco *e, const char *transport)
{
	if (!e)
		return false;
	if (!strcmp(transport, "z2m"))
		return e->z2m != NULL;
	if (!strcmp(transport, "ha"))
		return e->ha != NULL;
	return false;
}

void
hearth_eco_subscribe_all(hearth_eco *e)
{
	const char *const *s;

	if (!e)
		return;
	for (s = e->z2m ? hearth_z2m_subscriptions(e->z2m) : NULL; s && *s; s++)
		e->subscribe(e->sub_ud, *s);
	for (s = e->ha ? hearth_ha_subscriptions(e->ha) : NULL; s && *s; s++)
		e->subscribe(e->sub_ud, *s);
	if (e->ha)
		hearth_ha_each_topic(e->ha, e->subscribe, e->sub_ud);
}

bool
hearth_eco_on_message(hearth_eco *e, const char *topic, const void *payload, int len, int64_t now)
{
	bool took = false;

	if (!e)
		return false;
	if (e->z2m && hearth_z2m_on_message(e->z2m, topic, payload, len, now))
		took = true;
	/* A Home Assistant config may name a topic under zigbee2mqtt/ too. */
	if (e->ha && hearth_ha_on_message(e->ha, topic, payload, len, now))
		took = true;
	return took;
}

bool
hearth_eco_owns_topic(const hearth_eco *e, const char *topic)
{
	if (!e || !topic)
		return false;
	return (e->z2m && hearth_z2m_owns(e->z2m, topic)) ||
	       (e->ha && hearth_ha_owns(e->ha, topic));
}

int
hearth_eco_command(hearth_eco *e, const struct hearth_device *d, const cJSON *args,
                   struct hearth_pubs *pubs, char *why, size_t wl)
{
	if (e && e->z2m && !strcmp(d->transport, "z2m"))
		return hearth_z2m_command(e->z2m, d, args, pubs, why, wl);
	if (e && e->ha && !strcmp(d->transport, "ha"))
		return hearth_ha_command(e->ha, d, args, pubs, why, wl);
	return -ENOENT;
}
