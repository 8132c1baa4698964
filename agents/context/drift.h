/*
 * drift.h - the drift sentinel for numeric features (DESIGN.md 1.7): a
 * sensor's value ("t-1/temperature"), a device's command latency
 * ("latency/lamp-1"), anything the hub learns from and would rather not trust
 * once it stops behaving as it used to.
 *
 * Per feature:
 *   baseline  mean and variance learned (Welford) from the first
 *             baseline_samples observations, then frozen; with
 *             baseline_alpha > 0 it keeps following the feature slowly
 *             (exponential weights) while the feature is not drifting.
 *   window    the last `window` z-scores z = (x - mean) / std, std floored at
 *             min_std (a constant sensor has std 0).
 *   check     every check_interval_ms of hub time (the first one
 *             check_interval_ms after the baseline is learned), with at least
 *             min_samples z-scores in the window:
 *                 score = std(z) = sqrt(mean(z^2)) over the window
 *             (std about z's baseline mean 0, so a shift in level counts as
 *             well as a change in spread: a window-centred std would forget a
 *             level shift once the window is full of it). The feature drifts
 *             when abs(score - 1) > threshold (a stationary feature scores
 *             about 1). With the default threshold 2.0 that is a spread
 *             about three times the baseline's (std x3: score 3), or a
 *             level shift of about 2.8 baseline standard deviations.
 *   clear     a drifting feature clears after clear_checks consecutive
 *             checks with abs(score - 1) <= threshold (default 2, i.e. 30
 *             minutes of good behaviour at the default interval).
 * Memory per feature is fixed (window doubles); features are at most
 * max_features (made on first observation; HEARTH_E_FULL after that).
 *
 * How the agent uses it (no I/O, no clock, no logging here; times are the
 * hub's monotonic milliseconds, passed in):
 *   1. at start: hearth_drift_config_defaults(), then
 *      hearth_drift_config_parse() on the configuration's "drift" object,
 *      then hearth_drift_new();
 *   2. on every numeric reading of a watched feature:
 *      hearth_drift_observe(d, "<device>/<property>", value, now);
 *   3. on a timer (every minute is plenty): hearth_drift_tick(d, now, ev,
 *      max); for each event: append an audit record (kind "drift.started" or
 *      "drift.cleared", subject the feature, detail hearth_drift_event_json),
 *      publish it, and pause / resume what depends on the feature (while
 *      hearth_drift_drifting() is true, the flags lookup answers
 *      HEARTH_FLAG_INPUT_HOLD for it, see flags.h);
 *   4. `hearthctl health` shows hearth_drift_health_json().
 */
#ifndef HEARTH_AGENTS_CONTEXT_DRIFT_H
#define HEARTH_AGENTS_CONTEXT_DRIFT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_DRIFT_FEATURES_MAX 1024 /* hard bound on max_features */
#define HEARTH_DRIFT_WINDOW_MAX   1024 /* hard bound on window */
#define HEARTH_DRIFT_NAME_MAX     128  /* bytes of a feature name */

struct hearth_drift_config {
	int64_t check_interval_ms; /* default 900000 (15 min) */
	double threshold;          /* default 2.0 */
	int window;                /* z-scores kept, default 96 */
	int baseline_samples;      /* to learn the baseline, default 96 */
	int min_samples;           /* z-scores in the window before judging, default 24 */
	int clear_checks;          /* consecutive good checks to clear, default 2 */
	double baseline_alpha;     /* 0 (frozen, default) .. 1: baseline update weight */
	double min_std;            /* floor of the baseline std, default 1e-6 */
	int max_features;          /* default 256 */
};

enum hearth_drift_event_kind {
	HEARTH_DRIFT_STARTED,
	HEARTH_DRIFT_CLEARED,
};

struct hearth_drift_event {
	enum hearth_drift_event_kind kind;
	const char *feature; /* valid until the feature is forgotten or the sentinel freed */
	double score;        /* std(z) of the check */
	double mean_z;       /* mean of the window's z-scores (sign of a level shift) */
	int samples;         /* z-scores in the window */
	double threshold;
};

typedef struct hearth_drift hearth_drift;

void hearth_drift_config_defaults(struct hearth_drift_config *cfg);
/*
 * Apply a JSON object over cfg (every key optional): {"check_interval_s",
 * "threshold", "window", "baseline_samples", "min_samples", "clear_checks",
 * "baseline_alpha", "min_std", "max_features"}. NULL obj: nothing to do.
 * HEARTH_E_CONFIG with "<source>: drift.window: ..." in why on a wrong type,
 * a value out of range or an unknown key; cfg is unchanged then.
 */
int hearth_drift_config_parse(struct hearth_drift_config *cfg, const cJSON *obj, const char *source,
                              char *why, size_t why_len);
/*
 * A new sentinel (cfg copied; NULL: defaults). 0, HEARTH_E_CONFIG when cfg is
 * out of range, or -ENOMEM. The caller frees it with hearth_drift_free.
 */
int hearth_drift_new(const struct hearth_drift_config *cfg, hearth_drift **out);
void hearth_drift_free(hearth_drift *d);

/*
 * Record a reading of feature (made on first sight). 0, HEARTH_E_INVALID for
 * a name that is empty or too long or a value that is not finite,
 * HEARTH_E_FULL when max_features are watched already, -ENOMEM.
 */
int hearth_drift_observe(hearth_drift *d, const char *feature, double x, int64_t now_ms);
/*
 * Run the checks that are due at now_ms. Writes the events into ev, up to
 * max, and returns how many there were (one per feature at most).
 */
int hearth_drift_tick(hearth_drift *d, int64_t now_ms, struct hearth_drift_event *ev, int max);

/* Is feature drifting now? (false for an unknown feature) */
bool hearth_drift_drifting(const hearth_drift *d, const char *feature);
/* Stop watching feature (its baseline is learned again if it comes back). */
void hearth_drift_forget(hearth_drift *d, const char *feature);
int hearth_drift_count(const hearth_drift *d);

/* The audit / publish detail of an event: {"feature","state","score","mean_z",
 * "samples","threshold"}; the caller frees it with cJSON_Delete. NULL on ENOMEM. */
cJSON *hearth_drift_event_json(const struct hearth_drift_event *ev);
/*
 * {"features": n, "learning": n, "drifting": [{"feature","score","since_ms"}],
 *  "dropped": n (observations refused because the table was full)}
 * for `hearthctl health`; the caller frees it. NULL on ENOMEM.
 */
cJSON *hearth_drift_health_json(const hearth_drift *d);

#endif
