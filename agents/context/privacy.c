/*
 * privacy.c - the privacy guard (see privacy.h): a constant table from
 * capability and property names to data classes, a matrix of which consumer
 * may use which class (the defaults, plus what consent grants), and counters
 * of checks and denials. Names are matched against the table linearly: it is
 * a few dozen short strings, and a guard check is a handful of strcmp. The
 * guard owns only its matrix and counters; it never reads the store or the
 * clock and never logs.
 */
#include "agents/context/privacy.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <stdio.h>
#include <string.h>

struct hearth_privacy {
	bool allow[HEARTH_CONSUMER_COUNT][HEARTH_CLASS_COUNT];
	uint64_t denied[HEARTH_CONSUMER_COUNT][HEARTH_CLASS_COUNT];
	uint64_t checks;
};

static const char *const class_names[HEARTH_CLASS_COUNT] = {
        "presence", "media",  "audio",  "environment", "energy",
        "location", "camera", "device", "other",
};

static const char *const consumer_names[HEARTH_CONSUMER_COUNT] = {
        "planner",
        "learner",
        "suggestions",
        "export",
};

/* Capabilities ("x.*" for a prefix) first, then properties; first match wins. */
static const struct {
	const char *name;
	enum hearth_data_class cls;
} table[] = {
        /* capabilities */
        {"sensor.motion", HEARTH_CLASS_PRESENCE},
        {"sensor.occupancy", HEARTH_CLASS_PRESENCE},
        {"sensor.contact", HEARTH_CLASS_PRESENCE},
        {"sensor.presence", HEARTH_CLASS_PRESENCE},
        {"presence.*", HEARTH_CLASS_PRESENCE},
        {"media.*", HEARTH_CLASS_MEDIA},
        {"audio.*", HEARTH_CLASS_AUDIO},
        {"microphone.*", HEARTH_CLASS_AUDIO},
        {"sensor.sound", HEARTH_CLASS_AUDIO},
        {"sensor.temperature", HEARTH_CLASS_ENVIRONMENT},
        {"sensor.humidity", HEARTH_CLASS_ENVIRONMENT},
        {"sensor.illuminance", HEARTH_CLASS_ENVIRONMENT},
        {"sensor.co2", HEARTH_CLASS_ENVIRONMENT},
        {"sensor.pressure", HEARTH_CLASS_ENVIRONMENT},
        {"climate.*", HEARTH_CLASS_ENVIRONMENT},
        {"weather.*", HEARTH_CLASS_ENVIRONMENT},
        {"energy.*", HEARTH_CLASS_ENERGY},
        {"meter.*", HEARTH_CLASS_ENERGY},
        {"sensor.power", HEARTH_CLASS_ENERGY},
        {"sensor.energy", HEARTH_CLASS_ENERGY},
        {"location.*", HEARTH_CLASS_LOCATION},
        {"device_tracker.*", HEARTH_CLASS_LOCATION},
        {"camera.*", HEARTH_CLASS_CAMERA},
        {"light.*", HEARTH_CLASS_DEVICE},
        {"switch.*", HEARTH_CLASS_DEVICE},
        {"cover.*", HEARTH_CLASS_DEVICE},
        {"lock.*", HEARTH_CLASS_DEVICE},
        /* derived flags */
        {"someone_home", HEARTH_CLASS_PRESENCE},
        {"away", HEARTH_CLASS_PRESENCE},
        /* properties */
        {"motion", HEARTH_CLASS_PRESENCE},
        {"occupancy", HEARTH_CLASS_PRESENCE},
        {"contact", HEARTH_CLASS_PRESENCE},
        {"presence", HEARTH_CLASS_PRESENCE},
        {"volume", HEARTH_CLASS_MEDIA},
        {"media_title", HEARTH_CLASS_MEDIA},
        {"source", HEARTH_CLASS_MEDIA},
        {"sound", HEARTH_CLASS_AUDIO},
        {"noise", HEARTH_CLASS_AUDIO},
        {"audio_level", HEARTH_CLASS_AUDIO},
        {"temperature", HEARTH_CLASS_ENVIRONMENT},
        {"humidity", HEARTH_CLASS_ENVIRONMENT},
        {"illuminance", HEARTH_CLASS_ENVIRONMENT},
        {"co2", HEARTH_CLASS_ENVIRONMENT},
        {"pressure", HEARTH_CLASS_ENVIRONMENT},
        {"setpoint", HEARTH_CLASS_ENVIRONMENT},
        {"power", HEARTH_CLASS_ENERGY},
        {"energy", HEARTH_CLASS_ENERGY},
        {"current", HEARTH_CLASS_ENERGY},
        {"voltage", HEARTH_CLASS_ENERGY},
        {"location", HEARTH_CLASS_LOCATION},
        {"latitude", HEARTH_CLASS_LOCATION},
        {"longitude", HEARTH_CLASS_LOCATION},
        {"gps", HEARTH_CLASS_LOCATION},
        {"image", HEARTH_CLASS_CAMERA},
        {"snapshot", HEARTH_CLASS_CAMERA},
        {"stream", HEARTH_CLASS_CAMERA},
        {"on", HEARTH_CLASS_DEVICE},
        {"brightness", HEARTH_CLASS_DEVICE},
        {"color_temp", HEARTH_CLASS_DEVICE},
        {"position", HEARTH_CLASS_DEVICE},
        {"locked", HEARTH_CLASS_DEVICE},
};

#define NTABLE ((int)(sizeof(table) / sizeof(table[0])))

static bool
matches(const char *pattern, const char *what)
{
	size_t n = strlen(pattern);

	if (n >= 2 && pattern[n - 1] == '*')
		return !strncmp(pattern, what, n - 1) && what[n - 1];
	return !strcmp(pattern, what);
}

enum hearth_data_class
hearth_privacy_class_of(const char *what)
{
	size_t n, p = strlen("room."), s = strlen(".occupied");

	if (!what)
		return HEARTH_CLASS_OTHER;
	n = strlen(what);
	if (n > p + s && !strncmp(what, "room.", p) && !strcmp(what + n - s, ".occupied"))
		return HEARTH_CLASS_PRESENCE;
	for (int i = 0; i < NTABLE; i++)
		if (matches(table[i].name, what))
			return table[i].cls;
	return HEARTH_CLASS_OTHER;
}

const char *
hearth_privacy_class_name(enum hearth_data_class c)
{
	return (unsigned)c < HEARTH_CLASS_COUNT ? class_names[c] : "?";
}

const char *
hearth_privacy_consumer_name(enum hearth_consumer c)
{
	return (unsigned)c < HEARTH_CONSUMER_COUNT ? consumer_names[c] : "?";
}

static int
find_name(const char *const *names, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == len && !strncmp(names[i], name, len))
			return i;
	return -1;
}

int
hearth_privacy_class_find(const char *name)
{
	return name ? find_name(class_names, HEARTH_CLASS_COUNT, name, strlen(name)) : -1;
}

int
hearth_privacy_consumer_find(const char *name)
{
	return name ? find_name(consumer_names, HEARTH_CONSUMER_COUNT, name, strlen(name)) : -1;
}

void
hearth_privacy_reset(hearth_privacy *g)
{
	memset(g->allow, 0, sizeof(g->allow));
	for (int c = 0; c < HEARTH_CLASS_COUNT; c++)
		g->allow[HEARTH_CONSUMER_PLANNER][c] = c != HEARTH_CLASS_AUDIO &&
		                                       c != HEARTH_CLASS_CAMERA &&
		                                       c != HEARTH_CLASS_LOCATION;
	g->allow[HEARTH_CONSUMER_SUGGESTIONS][HEARTH_CLASS_DEVICE] = true;
	g->allow[HEARTH_CONSUMER_SUGGESTIONS][HEARTH_CLASS_ENVIRONMENT] = true;
}

hearth_privacy *
hearth_privacy_new(void)
{
	hearth_privacy *g = hearth_calloc(1, sizeof(*g));

	if (g)
		hearth_privacy_reset(g);
	return g;
}

void
hearth_privacy_free(hearth_privacy *g)
{
	hearth_free(g);
}

void
hearth_privacy_set(hearth_privacy *g, enum hearth_consumer who, enum hearth_data_class c,
                   bool allowed)
{
	if ((unsigned)who < HEARTH_CONSUMER_COUNT && (unsigned)c < HEARTH_CLASS_COUNT)
		g->allow[who][c] = allowed;
}

int
hearth_privacy_grant_scope(hearth_privacy *g, const char *scope)
{
	const char *cls, *slash;
	int c, who;

	if (!scope || strncmp(scope, "class:", 6))
		return HEARTH_E_INVALID;
	cls = scope + 6;
	if (!(slash = strchr(cls, '/')))
		return HEARTH_E_INVALID;
	c = find_name(class_names, HEARTH_CLASS_COUNT, cls, (size_t)(slash - cls));
	who = hearth_privacy_consumer_find(slash + 1);
	if (c < 0 || who < 0)
		return HEARTH_E_INVALID;
	g->allow[who][c] = true;
	return 0;
}

void
hearth_privacy_scope(enum hearth_consumer who, enum hearth_data_class c, char *out, size_t len)
{
	snprintf(out, len, "class:%s/%s", hearth_privacy_class_name(c),
	         hearth_privacy_consumer_name(who));
}

bool
hearth_privacy_permits(const hearth_privacy *g, enum hearth_consumer who, enum hearth_data_class c)
{
	return (unsigned)who < HEARTH_CONSUMER_COUNT && (unsigned)c < HEARTH_CLASS_COUNT &&
	       g->allow[who][c];
}

bool
hearth_privacy_allowed(hearth_privacy *g, enum hearth_consumer who, const char *what)
{
	enum hearth_data_class c = hearth_privacy_class_of(what);

	if ((unsigned)who >= HEARTH_CONSUMER_COUNT)
		return false;
	g->checks++;
	if (g->allow[who][c])
		return true;
	g->denied[who][c]++;
	return false;
}

uint64_t
hearth_privacy_denied(const hearth_privacy *g, enum hearth_consumer who, enum hearth_data_class c)
{
	if ((unsigned)who >= HEARTH_CONSUMER_COUNT || (unsigned)c >= HEARTH_CLASS_COUNT)
		return 0;
	return g->denied[who][c];
}

uint64_t
hearth_privacy_denied_total(const hearth_privacy *g)
{
	uint64_t n = 0;

	for (int w = 0; w < HEARTH_CONSUMER_COUNT; w++)
		for (int c = 0; c < HEARTH_CLASS_COUNT; c++)
			n += g->denied[w][c];
	return n;
}

cJSON *
hearth_privacy_health_json(const hearth_privacy *g)
{
	cJSON *o = cJSON_CreateObject(), *denied, *allowed, *by, *list, *s;

	if (!o || !cJSON_AddNumberToObject(o, "checks", (double)g->checks) ||
	    !cJSON_AddNumberToObject(o, "denied_total", (double)hearth_privacy_denied_total(g)) ||
	    !(denied = cJSON_AddObjectToObject(o, "denied")) ||
	    !(allowed = cJSON_AddObjectToObject(o, "allowed")))
		goto fail_json;
	for (int w = 0; w < HEARTH_CONSUMER_COUNT; w++) {
		by = NULL;
		if (!(list = cJSON_AddArrayToObject(allowed, consumer_names[w])))
			goto fail_json;
		for (int c = 0; c < HEARTH_CLASS_COUNT; c++) {
			if (g->allow[w][c]) {
				s = cJSON_CreateString(class_names[c]);
				if (!s || !cJSON_AddItemToArray(list, s)) {
					cJSON_Delete(s);
					goto fail_json;
				}
			}
			if (!g->denied[w][c])
				continue;
			if (!by && !(by = cJSON_AddObjectToObject(denied, consumer_names[w])))
				goto fail_json;
			if (!cJSON_AddNumberToObject(by, class_names[c], (double)g->denied[w][c]))
				goto fail_json;
		}
	}
	return o;

fail_json:
	cJSON_Delete(o);
	return NULL;
}
