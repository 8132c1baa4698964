/*
 * drift.c - the drift sentinel (see drift.h). Each feature owns a fixed
 * block: its baseline (Welford's running mean and sum of squares while
 * learning, then the mean and variance, frozen or moved by exponential
 * weights) and a ring of its last z-scores. Observing is O(1) after the
 * name lookup (linear over the features: a hub watches tens to hundreds);
 * judging happens only in hearth_drift_tick, at most once per feature per
 * check interval, so the cost and the events do not depend on how chatty a
 * sensor is. The sentinel owns its features and their names; it reads no
 * clock, does no I/O and never logs.
 */
#include "agents/context/drift.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct feature {
	char name[HEARTH_DRIFT_NAME_MAX + 1];
	long n;          /* baseline samples seen while learning */
	double mean, m2; /* Welford while learning */
	double var;      /* baseline variance once learned */
	bool learned;
	double *z; /* ring of cfg.window z-scores */
	int zhead, zcount;
	int64_t next_check;
	bool drifting;
	int good; /* consecutive good checks while drifting */
	double score;
	int64_t since; /* when the drift started */
};

struct hearth_drift {
	struct hearth_drift_config cfg;
	struct feature **f;
	int n;
	uint64_t dropped;
};

/* ==== Configuration ==== */

void
hearth_drift_config_defaults(struct hearth_drift_config *cfg)
{
	cfg->check_interval_ms = 15 * 60 * 1000;
	cfg->threshold = 2.0;
	cfg->window = 96;
	cfg->baseline_samples = 96;
	cfg->min_samples = 24;
	cfg->clear_checks = 2;
	cfg->baseline_alpha = 0.0;
	cfg->min_std = 1e-6;
	cfg->max_features = 256;
}

static int bad(const char *source, const char *key, char *why, size_t why_len, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* "<source>: drift.<key>: <message>" into why; returns HEARTH_E_CONFIG. */
static int
bad(const char *source, const char *key, char *why, size_t why_len, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	if (!why || !why_len)
		return HEARTH_E_CONFIG;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(why, why_len, "%s%sdrift%s%s: %s", source ? source : "", source ? ": " : "",
	         key ? "." : "", key ? key : "", msg);
	return HEARTH_E_CONFIG;
}

/* Every value in its range; the first one that is not is reported. */
static int
check_config(const struct hearth_drift_config *c, const char *source, char *why, size_t why_len)
{
	if (c->check_interval_ms < 1000)
		return bad(source, "check_interval_s", why, why_len, "must be at least 1 second");
	if (!(c->threshold > 0) || !isfinite(c->threshold))
		return bad(source, "threshold", why, why_len, "must be a number above 0");
	if (c->window < 2 || c->window > HEARTH_DRIFT_WINDOW_MAX)
		return bad(source, "window", why, why_len, "must be from 2 to %d",
		           HEARTH_DRIFT_WINDOW_MAX);
	if (c->baseline_samples < 2 || c->baseline_samples > 1000000)
		return bad(source, "baseline_samples", why, why_len, "must be from 2 to 1000000");
	if (c->min_samples < 2 || c->min_samples > c->window)
		return bad(source, "min_samples", why, why_len, "must be from 2 to the window (%d)",
		           c->window);
	if (c->clear_checks < 1 || c->clear_checks > 1000)
		return bad(source, "clear_checks", why, why_len, "must be from 1 to 1000");
	if (!(c->baseline_alpha >= 0 && c->baseline_alpha < 1))
		return bad(source, "baseline_alpha", why, why_len,
		           "must be from 0 (frozen baseline) to below 1");
	if (!(c->min_std > 0) || !isfinite(c->min_std))
		return bad(source, "min_std", why, why_len, "must be a number above 0");
	if (c->max_features < 1 || c->max_features > HEARTH_DRIFT_FEATURES_MAX)
		return bad(source, "max_features", why, why_len, "must be from 1 to %d",
		           HEARTH_DRIFT_FEATURES_MAX);
	return 0;
}

int
hearth_drift_config_parse(struct hearth_drift_config *cfg, const cJSON *obj, const char *source,
                          char *why, size_t why_len)
{
	struct hearth_drift_config c = *cfg;
	const cJSON *m;

	if (why && why_len)
		why[0] = '\0';
	if (!obj)
		return 0;
	if (!cJSON_IsObject(obj))
		return bad(source, NULL, why, why_len, "expected an object");
	cJSON_ArrayForEach(m, obj)
	{
		double v = m->valuedouble;
		bool whole;

		if (!cJSON_IsNumber(m))
			return bad(source, m->string, why, why_len, "expected a number");
		whole = v == floor(v) && fabs(v) < 1e9;
		if (!strcmp(m->string, "threshold"))
			c.threshold = v;
		else if (!strcmp(m->string, "baseline_alpha"))
			c.baseline_alpha = v;
		else if (!strcmp(m->string, "min_std"))
			c.min_std = v;
		else if (!strcmp(m->string, "check_interval_s") && v >= 1 && v <= 86400 * 7)
			c.check_interval_ms = (int64_t)(v * 1000);
		else if (!strcmp(m->string, "check_interval_s"))
			return bad(source, m->string, why, why_len,
			           "must be from 1 to 604800 seconds");
		else if (!whole &&
		         (!strcmp(m->string, "window") || !strcmp(m->string, "baseline_samples") ||
		          !strcmp(m->string, "min_samples") || !strcmp(m->string, "clear_checks") ||
		          !strcmp(m->string, "max_features")))
			return bad(source, m->string, why, why_len, "expected a whole number");
		else if (!strcmp(m->string, "window"))
			c.window = (int)v;
		else if (!strcmp(m->string, "baseline_samples"))
			c.baseline_samples = (int)v;
		else if (!strcmp(m->string, "min_samples"))
			c.min_samples = (int)v;
		else if (!strcmp(m->string, "clear_checks"))
			c.clear_checks = (int)v;
		else if (!strcmp(m->string, "max_features"))
			c.max_features = (int)v;
		else
			return bad(source, m->string, why, why_len,
			           "unknown key (expected one of: check_interval_s, threshold, "
			           "window, baseline_samples, min_samples, clear_checks, "
			           "baseline_alpha, min_std, max_features)");
	}
	if (check_config(&c, source, why, why_len))
		return HEARTH_E_CONFIG;
	*cfg = c;
	return 0;
}

/* ==== The sentinel ==== */

int
hearth_drift_new(const struct hearth_drift_config *cfg, hearth_drift **out)
{
	hearth_drift *d;

	*out = NULL;
	d = hearth_calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (cfg)
		d->cfg = *cfg;
	else
		hearth_drift_config_defaults(&d->cfg);
	if (check_config(&d->cfg, NULL, NULL, 0)) {
		hearth_free(d);
		return HEARTH_E_CONFIG;
	}
	d->f = hearth_calloc((size_t)d->cfg.max_features, sizeof(*d->f));
	if (!d->f) {
		hearth_free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static void
feature_free(struct feature *f)
{
	if (!f)
		return;
	hearth_free(f->z);
	hearth_free(f);
}

void
hearth_drift_free(hearth_drift *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->n; i++)
		feature_free(d->f[i]);
	hearth_free(d->f);
	hearth_free(d);
}

static int
find(const hearth_drift *d, const char *name)
{
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->f[i]->name, name))
			return i;
	return -1;
}

/* The feature called name, made when new; NULL with *err set when it cannot be. */
static struct feature *
get(hearth_drift *d, const char *name, int *err)
{
	struct feature *f;
	int i = find(d, name);

	if (i >= 0)
		return d->f[i];
	if (d->n >= d->cfg.max_features) {
		d->dropped++;
		*err = HEARTH_E_FULL;
		return NULL;
	}
	f = hearth_calloc(1, sizeof(*f));
	if (f)
		f->z = hearth_calloc((size_t)d->cfg.window, sizeof(*f->z));
	if (!f || !f->z) {
		feature_free(f);
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(f->name, sizeof(f->name), "%s", name);
	d->f[d->n++] = f;
	return f;
}

int
hearth_drift_observe(hearth_drift *d, const char *feature, double x, int64_t now_ms)
{
	const struct hearth_drift_config *c = &d->cfg;
	struct feature *f;
	size_t len = feature ? strlen(feature) : 0;
	double delta, std, z;
	int err = 0;

	if (!len || len > HEARTH_DRIFT_NAME_MAX || !isfinite(x))
		return HEARTH_E_INVALID;
	if (!(f = get(d, feature, &err)))
		return err;
	if (!f->learned) {
		/* Welford */
		f->n++;
		delta = x - f->mean;
		f->mean += delta / (double)f->n;
		f->m2 += delta * (x - f->mean);
		if (f->n >= c->baseline_samples) {
			f->var = f->m2 / (double)(f->n - 1);
			f->learned = true;
			f->next_check = now_ms + c->check_interval_ms;
		}
		return 0;
	}
	std = sqrt(f->var);
	if (std < c->min_std)
		std = c->min_std;
	z = (x - f->mean) / std;
	f->z[f->zhead] = z;
	f->zhead = (f->zhead + 1) % c->window;
	if (f->zcount < c->window)
		f->zcount++;
	if (c->baseline_alpha > 0 && !f->drifting) {
		/* exponentially weighted mean and variance */
		double incr = c->baseline_alpha * (x - f->mean);

		f->var = (1 - c->baseline_alpha) * (f->var + (x - f->mean) * incr);
		f->mean += incr;
	}
	return 0;
}

/* One check of f at now; fills ev and returns 1 when its state changed. */
static int
check(hearth_drift *d, struct feature *f, int64_t now, struct hearth_drift_event *ev)
{
	const struct hearth_drift_config *c = &d->cfg;
	double sum = 0, sum2 = 0, mean_z;
	bool good;

	if (f->zcount < c->min_samples)
		return 0;
	for (int i = 0; i < f->zcount; i++) {
		sum += f->z[i];
		sum2 += f->z[i] * f->z[i];
	}
	mean_z = sum / f->zcount;
	f->score = sqrt(sum2 / f->zcount);
	good = fabs(f->score - 1) <= c->threshold;
	if (!f->drifting && good)
		return 0;
	if (!f->drifting) {
		f->drifting = true;
		f->good = 0;
		f->since = now;
		ev->kind = HEARTH_DRIFT_STARTED;
	} else if (!good) {
		f->good = 0;
		return 0;
	} else if (++f->good < c->clear_checks) {
		return 0;
	} else {
		f->drifting = false;
		ev->kind = HEARTH_DRIFT_CLEARED;
	}
	ev->feature = f->name;
	ev->score = f->score;
	ev->mean_z = mean_z;
	ev->samples = f->zcount;
	ev->threshold = c->threshold;
	return 1;
}

int
hearth_drift_tick(hearth_drift *d, int64_t now_ms, struct hearth_drift_event *ev, int max)
{
	struct hearth_drift_event e;
	int n = 0;

	for (int i = 0; i < d->n; i++) {
		struct feature *f = d->f[i];

		if (!f->learned || now_ms < f->next_check)
			continue;
		/* one check however late the tick; the schedule keeps its phase */
		while (f->next_check <= now_ms)
			f->next_check += d->cfg.check_interval_ms;
		if (!check(d, f, now_ms, &e))
			continue;
		if (ev && n < max)
			ev[n] = e;
		n++;
	}
	return n;
}

bool
hearth_drift_drifting(const hearth_drift *d, const char *feature)
{
	int i = feature ? find(d, feature) : -1;

	return i >= 0 && d->f[i]->drifting;
}

void
hearth_drift_forget(hearth_drift *d, const char *feature)
{
	int i = feature ? find(d, feature) : -1;

	if (i < 0)
		return;
	feature_free(d->f[i]);
	memmove(&d->f[i], &d->f[i + 1], (size_t)(d->n - i - 1) * sizeof(*d->f));
	d->n--;
}

int
hearth_drift_count(const hearth_drift *d)
{
	return d->n;
}

cJSON *
hearth_drift_event_json(const struct hearth_drift_event *ev)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "feature", ev->feature) ||
	    !cJSON_AddStringToObject(o, "state",
	                             ev->kind == HEARTH_DRIFT_STARTED ? "drifting" : "cleared") ||
	    !cJSON_AddNumberToObject(o, "score", ev->score) ||
	    !cJSON_AddNumberToObject(o, "mean_z", ev->mean_z) ||
	    !cJSON_AddNumberToObject(o, "samples", ev->samples) ||
	    !cJSON_AddNumberToObject(o, "threshold", ev->threshold)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *
hearth_drift_health_json(const hearth_drift *d)
{
	cJSON *o = cJSON_CreateObject(), *list, *e;
	int learning = 0;

	if (!o || !(list = cJSON_AddArrayToObject(o, "drifting")))
		goto fail_json;
	for (int i = 0; i < d->n; i++) {
		const struct feature *f = d->f[i];

		learning += !f->learned;
		if (!f->drifting)
			continue;
		if (!(e = cJSON_CreateObject()) || !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			goto fail_json;
		}
		if (!cJSON_AddStringToObject(e, "feature", f->name) ||
		    !cJSON_AddNumberToObject(e, "score", f->score) ||
		    !cJSON_AddNumberToObject(e, "since_ms", (double)f->since))
			goto fail_json;
	}
	if (!cJSON_AddNumberToObject(o, "features", d->n) ||
	    !cJSON_AddNumberToObject(o, "learning", learning) ||
	    !cJSON_AddNumberToObject(o, "dropped", (double)d->dropped))
		goto fail_json;
	return o;

fail_json:
	cJSON_Delete(o);
	return NULL;
}
