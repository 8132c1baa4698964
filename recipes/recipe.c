/*
 * recipe.c - recipe documents: parsing, validation (preflight) and the book
 * of loaded recipes.
 *
 * Validation is strict about what the planner relies on (ids, capabilities,
 * value ranges, slot references) and lenient about the rest (unknown fields
 * are ignored, as everywhere in hearth). Every problem names the file and the
 * JSON path of the field; every problem of a document is reported, one line
 * each (see struct pctx).
 */
#include "recipes/recipe.h"

#include "hearth_config.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "recipes/capability.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECIPE_FILE_MAX (1 << 20)

struct hearth_recipe_book {
	struct hearth_recipe **items;
	int n;
};

/* ==== Parsing ==== */

/*
 * The parse context collects problems. Each is one line "file: path: what"
 * appended to the caller's why buffer (lines separated by '\n') and counted.
 * Parsing goes on after a problem wherever what follows does not depend on
 * it, so an author sees every mistake at once; a check that depends on a
 * field that failed is left out rather than reported as a second problem.
 * Room for a last line is always kept: once a line does not fit, it and
 * every later problem are only counted, and problems_end() writes
 * "file: ... and N more problems".
 */
struct pctx {
	const char *file;
	char *why;
	size_t why_len;
	size_t used;    /* characters of why in use (without the NUL) */
	size_t reserve; /* room kept for the "... and N more problems" line */
	int n;          /* problems found */
	int more;       /* problems found but not written (why was full) */
	bool slots_bad; /* slots is not an object: slot references are not checked */
};

static int problem(struct pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records one problem; returns HEARTH_E_INVALID (parsing goes on). */
static int
problem(struct pctx *p, const char *fmt, ...)
{
	size_t room;
	char *at;
	va_list ap;
	int n, m;

	p->n++;
	if (p->more || !p->why || p->used + p->reserve >= p->why_len) {
		p->more++;
		return HEARTH_E_INVALID;
	}
	room = p->why_len - p->reserve - p->used; /* the line and its NUL */
	at = p->why + p->used;
	n = snprintf(at, room, "%s%s: ", p->used ? "\n" : "", p->file);
	if (n >= 0 && (size_t)n < room) {
		va_start(ap, fmt);
		m = vsnprintf(at + n, room - (size_t)n, fmt, ap);
		va_end(ap);
		if (m >= 0 && (size_t)m < room - (size_t)n) {
			p->used += (size_t)n + (size_t)m;
			return HEARTH_E_INVALID;
		}
	}
	*at = '\0';
	p->more++;
	return HEARTH_E_INVALID;
}

/* The last line when some problems did not fit (the room was kept for it). */
static void
problems_end(struct pctx *p)
{
	if (!p->more || !p->why || !p->why_len)
		return;
	snprintf(p->why + p->used, p->why_len - p->used, "%s%s: ... and %d more problem%s",
	         p->used ? "\n" : "", p->file, p->more, p->more == 1 ? "" : "s");
}

/*
 * A string field: 0 (copied into *out, or absent and not required),
 * HEARTH_E_INVALID (reported; *out stays NULL) or -ENOMEM.
 */
static int
dup_str(struct pctx *p, const cJSON *obj, const char *key, const char *path, bool required,
        char **out)
{
	const char *s;
	int rc = hearth_json_get_str(obj, key, &s);

	if (rc == -ENOENT) {
		if (required)
			return problem(p, "%s%s: is required (a string)", path, key);
		return 0;
	}
	if (rc)
		return problem(p, "%s%s: must be a string", path, key);
	*out = hearth_strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* "{name}" -> name (in buf), else NULL. */
static const char *
slot_ref(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s);

	if (n < 3 || s[0] != '{' || s[n - 1] != '}' || n - 2 >= len)
		return NULL;
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	return buf;
}

/*
 * An args / holds value "{slot}": the slot must exist and fit the property.
 * A slot whose type or default was refused is not checked again here.
 */
static void
check_slot_value(struct pctx *p, const struct hearth_recipe *r, const cJSON *a, const char *path,
                 const char *ref)
{
	const struct hearth_recipe_slot *sl = hearth_recipe_slot(r, ref);
	char why[128];

	if (!sl) {
		if (!p->slots_bad)
			problem(p, "%s.%s: refers to slot \"%s\", which slots does not declare",
			        path, a->string, ref);
		return;
	}
	if (!sl->type)
		return;
	for (int i = 0; i < hearth_capability_count(); i++) {
		const struct hearth_capability *c = hearth_capability_at(i);

		if (strcmp(c->property, a->string))
			continue;
		if (c->kind == HEARTH_VALUE_BOOL || !strcmp(sl->type, "room") ||
		    !strcmp(sl->type, "string")) {
			problem(p, "%s.%s: slot \"%s\" is a %s, which cannot give a %s", path,
			        a->string, ref, sl->type,
			        c->kind == HEARTH_VALUE_BOOL ? "true or false" : "number");
			return;
		}
		break;
	}
	if (sl->def && hearth_capability_check_value(a->string, sl->def, why, sizeof(why)))
		problem(p, "%s.%s: the default of slot \"%s\" does not fit: %s", path, a->string,
		        ref, why);
}

/* args or holds: every property is checked (one problem per property at most). */
static void
check_args(struct pctx *p, const struct hearth_recipe *r, const cJSON *args, const char *path,
           bool holds)
{
	const cJSON *a;
	char why[128], ref[HEARTH_SLOT_NAME_MAX + 1];

	if (!cJSON_IsObject(args) || !args->child) {
		problem(p, "%s: must be a non-empty object of properties", path);
		return;
	}
	cJSON_ArrayForEach(a, args)
	{
		bool known = false;

		for (int i = 0; i < hearth_capability_count(); i++)
			if (!strcmp(hearth_capability_at(i)->property, a->string))
				known = true;
		if (!known) {
			problem(p, "%s.%.64s: no capability has this property", path, a->string);
			continue;
		}
		if (cJSON_IsString(a) && slot_ref(a->valuestring, ref, sizeof(ref))) {
			check_slot_value(p, r, a, path, ref);
			continue;
		}
		if (holds && cJSON_IsObject(a)) {
			const cJSON *b;

			cJSON_ArrayForEach(b, a)
			{
				if ((strcmp(b->string, "max") && strcmp(b->string, "min")) ||
				    !cJSON_IsNumber(b)) {
					problem(p, "%s.%s: a bound is {\"max\":N} or {\"min\":N}",
					        path, a->string);
					break;
				}
			}
			continue;
		}
		if (hearth_capability_check_value(a->string, a, why, sizeof(why)))
			problem(p, "%s.%s: %s", path, a->string, why);
	}
}

/*
 * after: ids of earlier steps (each once); every element is checked. When an
 * earlier step has no usable id (its own problem was reported), a name that
 * matches no earlier step may well mean that one, so it is not reported.
 */
static int
parse_after(struct pctx *p, struct hearth_recipe *r, const cJSON *after, int i)
{
	struct hearth_recipe_step *st = &r->steps[i];
	bool unnamed = false;
	const cJSON *a;
	int k = 0, n = 0;

	if (!after)
		return 0;
	if (!cJSON_IsArray(after))
		return problem(p, "steps[%d].after: must be an array of earlier step ids", i);
	st->after = hearth_calloc((size_t)cJSON_GetArraySize(after), sizeof(int));
	if (!st->after)
		return -ENOMEM;
	for (int j = 0; j < i; j++)
		unnamed = unnamed || !r->steps[j].id;
	cJSON_ArrayForEach(a, after)
	{
		int found = -1;
		bool twice = false;

		if (!cJSON_IsString(a)) {
			problem(p, "steps[%d].after[%d]: must be a step id (a string)", i, k++);
			continue;
		}
		/*
		 * Later steps are not parsed yet: only earlier ones can be found
		 * (first, so that a step that reuses an earlier id still waits
		 * for that one rather than for itself).
		 */
		for (int j = 0; j < i && found < 0; j++)
			if (r->steps[j].id && !strcmp(r->steps[j].id, a->valuestring))
				found = j;
		if (found < 0 && st->id && !strcmp(a->valuestring, st->id)) {
			problem(p, "steps[%d].after[%d]: a step cannot wait for itself", i, k++);
			continue;
		}
		if (found < 0) {
			if (!unnamed)
				problem(p, "steps[%d].after[%d]: \"%.64s\" is not an earlier step",
				        i, k, a->valuestring);
			k++;
			continue;
		}
		for (int j = 0; j < n; j++)
			twice = twice || st->after[j] == found;
		if (twice)
			problem(p, "steps[%d].after[%d]: \"%.64s\" is listed twice", i, k,
			        a->valuestring);
		else
			st->after[n++] = found;
		k++;
	}
	st->nafter = n;
	return 0;
}

/* A copy of obj's key (NULL when absent): 0 or -ENOMEM. */
static int
dup_item(const cJSON *obj, const char *key, cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = v ? cJSON_Duplicate(v, 1) : NULL;
	return v && !*out ? -ENOMEM : 0;
}

/* One step; every field is checked. Returns 0 (problems reported) or -ENOMEM. */
static int
parse_step(struct pctx *p, struct hearth_recipe *r, const cJSON *js, int i)
{
	struct hearth_recipe_step *st = &r->steps[i];
	char path[48], apath[48], ref[HEARTH_SLOT_NAME_MAX + 1];
	const char *capname, *pick;
	const cJSON *target;
	long long timeout;
	int rc;

	snprintf(path, sizeof(path), "steps[%d].", i);
	st->cap = -1;
	st->compensate = true;
	st->timeout_ms = HEARTH_STEP_TIMEOUT_DEFAULT_MS;
	if (!cJSON_IsObject(js)) {
		problem(p, "steps[%d]: must be an object", i);
		return 0;
	}

	/* id: an invalid one is kept, so that after can still name it */
	if ((rc = dup_str(p, js, "id", path, true, &st->id)) == -ENOMEM)
		return rc;
	if (st->id && !hearth_id_valid_str(st->id)) {
		problem(p, "%sid: must be 1-64 characters of A-Z a-z 0-9 _ . -", path);
	} else if (st->id) {
		for (int j = 0; j < i; j++)
			if (r->steps[j].id && !strcmp(r->steps[j].id, st->id)) {
				problem(p, "%sid: \"%s\" is used by steps[%d] too", path, st->id,
				        j);
				break;
			}
	}

	rc = hearth_json_get_str(js, "capability", &capname);
	if (rc == -ENOENT)
		problem(p, "%scapability: is required (a capability name)", path);
	else if (rc)
		problem(p, "%scapability: must be a capability name (a string)", path);
	else if ((st->cap = hearth_capability_find(capname)) < 0)
		problem(p, "%scapability: unknown capability \"%.64s\"", path, capname);
	else if (!hearth_capability_at(st->cap)->actuator) {
		problem(p, "%scapability: \"%.64s\" is a sensor and cannot be commanded", path,
		        capname);
		st->cap = -1;
	}

	target = cJSON_GetObjectItemCaseSensitive(js, "target");
	if (target && !cJSON_IsObject(target)) {
		problem(p, "%starget: must be an object", path);
	} else if (target) {
		char tpath[64];

		snprintf(tpath, sizeof(tpath), "%starget.", path);
		if (dup_str(p, target, "room", tpath, false, &st->room) == -ENOMEM ||
		    dup_str(p, target, "kind", tpath, false, &st->kind) == -ENOMEM)
			return -ENOMEM;
		if (st->room && slot_ref(st->room, ref, sizeof(ref)) && !p->slots_bad &&
		    !hearth_recipe_slot(r, ref))
			problem(p, "%sroom: refers to slot \"%s\", which slots does not declare",
			        tpath, ref);
	}

	if (hearth_json_get_str(js, "pick", &pick) == 0) {
		if (!strcmp(pick, "one"))
			st->pick_one = true;
		else if (strcmp(pick, "all"))
			problem(p, "%spick: must be \"all\" or \"one\"", path);
	} else if (cJSON_GetObjectItemCaseSensitive(js, "pick")) {
		problem(p, "%spick: must be \"all\" or \"one\"", path);
	}

	if (dup_item(js, "args", &st->args) || dup_item(js, "holds", &st->holds))
		return -ENOMEM;
	snprintf(apath, sizeof(apath), "steps[%d].args", i);
	check_args(p, r, st->args, apath, false);
	if (st->holds) {
		snprintf(apath, sizeof(apath), "steps[%d].holds", i);
		check_args(p, r, st->holds, apath, true);
	}

	rc = hearth_json_get_int(js, "timeout_ms", &timeout);
	if (rc == 0 && (timeout < 10 || timeout > 3600000))
		problem(p, "%stimeout_ms: must be from 10 to 3600000", path);
	else if (rc == 0)
		st->timeout_ms = (int)timeout;
	else if (rc != -ENOENT)
		problem(p, "%stimeout_ms: must be a whole number of milliseconds", path);
	rc = hearth_json_get_bool(js, "compensate", &st->compensate);
	if (rc && rc != -ENOENT)
		problem(p, "%scompensate: must be true or false", path);
	rc = parse_after(p, r, cJSON_GetObjectItemCaseSensitive(js, "after"), i);
	return rc == -ENOMEM ? rc : 0;
}

bool
hearth_recipe_slot_value_ok(const char *type, const cJSON *v)
{
	if (!strcmp(type, "room") || !strcmp(type, "string"))
		return cJSON_IsString(v) && v->valuestring[0] &&
		       strlen(v->valuestring) <= HEARTH_SLOT_NAME_MAX;
	return cJSON_IsNumber(v);
}

/*
 * slots: every slot and field is checked. A slot keeps its name whatever is
 * wrong with it (references to it are not reported again); a refused type
 * or default is dropped (NULL), so the checks that depend on it are skipped.
 */
static int
parse_slots(struct pctx *p, struct hearth_recipe *r, const cJSON *slots)
{
	static const char *const types[] = {"room", "string", "number", "percent", "temperature"};
	const cJSON *s;
	int i = 0;

	if (!slots)
		return 0;
	if (!cJSON_IsObject(slots)) {
		p->slots_bad = true;
		return problem(
		        p, "slots: must be an object of slot name -> {type, required, default}");
	}
	r->nslots = cJSON_GetArraySize(slots);
	r->slots = hearth_calloc((size_t)r->nslots, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	cJSON_ArrayForEach(s, slots)
	{
		struct hearth_recipe_slot *sl = &r->slots[i++];
		char path[96];
		bool ok = false;
		int rc;

		if (!(sl->name = hearth_strdup(s->string)))
			return -ENOMEM;
		if (!hearth_id_valid_str(sl->name))
			problem(p,
			        "slots.%.64s: slot names are 1-64 characters of A-Z a-z 0-9 _ . -",
			        sl->name);
		if (!cJSON_IsObject(s)) {
			problem(p, "slots.%.64s: must be an object", sl->name);
			continue;
		}
		snprintf(path, sizeof(path), "slots.%.64s.", sl->name);
		if ((rc = dup_str(p, s, "type", path, true, &sl->type)) == -ENOMEM)
			return rc;
		for (size_t t = 0; sl->type && t < sizeof(types) / sizeof(types[0]); t++)
			ok = ok || !strcmp(sl->type, types[t]);
		if (sl->type && !ok) {
			problem(p,
			        "%stype: \"%.64s\" is not one of room, string, number, percent, "
			        "temperature",
			        path, sl->type);
			hearth_free(sl->type);
			sl->type = NULL;
		}
		rc = hearth_json_get_bool(s, "required", &sl->required);
		if (rc && rc != -ENOENT)
			problem(p, "%srequired: must be true or false", path);
		if (dup_item(s, "default", &sl->def))
			return -ENOMEM;
		if (sl->def && sl->type && !hearth_recipe_slot_value_ok(sl->type, sl->def))
			problem(p, "%sdefault: must be a %s", path,
			        (!strcmp(sl->type, "room") || !strcmp(sl->type, "string"))
			                ? "string of 1-64 characters"
			                : "number");
		if (sl->def && (!sl->type || !hearth_recipe_slot_value_ok(sl->type, sl->def))) {
			cJSON_Delete(sl->def);
			sl->def = NULL;
		}
	}
	return 0;
}

/*
 * An array of strings, every element checked: HEARTH_E_INVALID when arr is
 * not an array (*out stays NULL), else 0 with NULL for each element that is
 * not a string (reported), or -ENOMEM.
 */
static int
parse_strings(struct pctx *p, const cJSON *arr, const char *key, char ***out, int *n)
{
	const cJSON *s;
	int i = 0;

	if (!cJSON_IsArray(arr))
		return problem(p, "%s: must be an array of strings", key);
	*n = cJSON_GetArraySize(arr);
	*out = hearth_calloc((size_t)*n, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(s, arr)
	{
		if (!cJSON_IsString(s))
			problem(p, "%s[%d]: must be a string", key, i);
		else if (!((*out)[i] = hearth_strdup(s->valuestring)))
			return -ENOMEM;
		i++;
	}
	return 0;
}

const char *const hearth_recipe_consent_names[] = {
        "presence", "media",  "audio",  "environment", "energy",
        "location", "camera", "device", "other",       NULL,
};

static const char *const mode_names[] = {"single", "restart", "queued", "parallel"};

const char *
hearth_recipe_mode_name(enum hearth_recipe_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

const char *
hearth_recipe_approval_name(enum hearth_approval_policy a)
{
	return a == HEARTH_APPROVAL_ALWAYS  ? "always"
	       : a == HEARTH_APPROVAL_NEVER ? "never"
	                                    : "auto";
}

static int sentence_problem(char *why, size_t why_len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
sentence_problem(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return HEARTH_E_INVALID;
}

/* The first problem of one template; slot names are looked up when slots_known. */
static int
check_sentence(const struct hearth_recipe *r, const char *tpl, bool slots_known, char *why,
               size_t why_len)
{
	char stack[32], name[HEARTH_SLOT_NAME_MAX + 1];
	int depth = 0;
	bool blank = true;

	for (const char *c = tpl; *c; c++) {
		if (*c != ' ' && *c != '\t')
			blank = false;
		if (*c == '(' || *c == '[') {
			if (depth == (int)sizeof(stack))
				return sentence_problem(why, why_len, "groups nest too deep");
			if (c[1] == (*c == '(' ? ')' : ']'))
				return sentence_problem(why, why_len, "empty group \"%c%c\"", c[0],
				                        c[1]);
			stack[depth++] = *c;
		} else if (*c == ')' || *c == ']') {
			char open = *c == ')' ? '(' : '[';

			if (!depth)
				return sentence_problem(why, why_len,
				                        "\"%c\" has no \"%c\" before it", *c, open);
			if (stack[depth - 1] != open)
				return sentence_problem(why, why_len, "\"%c\" closes \"%c\"", *c,
				                        stack[depth - 1]);
			depth--;
		} else if (*c == '{') {
			const char *end = strchr(c + 1, '}');
			size_t n;

			if (!end)
				return sentence_problem(why, why_len, "\"{\" is not closed");
			n = (size_t)(end - c - 1);
			if (n == 0 || n > HEARTH_SLOT_NAME_MAX)
				return sentence_problem(why, why_len,
				                        "a slot is {name}, 1-64 characters");
			memcpy(name, c + 1, n);
			name[n] = '\0';
			if (!hearth_id_valid_str(name))
				return sentence_problem(why, why_len, "\"{%s}\" is not a slot name",
				                        name);
			if (slots_known && !hearth_recipe_slot(r, name))
				return sentence_problem(
				        why, why_len,
				        "refers to slot \"%s\", which slots does not declare",
				        name);
			c = end;
		} else if (*c == '}') {
			return sentence_problem(why, why_len, "\"}\" has no \"{\" before it");
		}
	}
	if (blank)
		return sentence_problem(why, why_len, "must not be empty");
	if (depth)
		return sentence_problem(why, why_len, "\"%c\" is not closed", stack[depth - 1]);
	return 0;
}

int
hearth_recipe_check_sentence(const struct hearth_recipe *r, const char *tpl, char *why,
                             size_t why_len)
{
	return check_sentence(r, tpl, true, why, why_len);
}

/* sentences: every template is checked (the first problem of each). */
static int
parse_sentences(struct pctx *p, struct hearth_recipe *r, const cJSON *arr)
{
	char why[160];
	int rc;

	if (!arr)
		return 0;
	if ((rc = parse_strings(p, arr, "sentences", &r->sentences, &r->nsentences)))
		return rc;
	for (int i = 0; i < r->nsentences; i++)
		if (r->sentences[i] &&
		    check_sentence(r, r->sentences[i], !p->slots_bad, why, sizeof(why)))
			problem(p, "sentences[%d]: %s", i, why);
	return 0;
}

static void
parse_run_mode(struct pctx *p, struct hearth_recipe *r, const cJSON *doc)
{
	const char *mode;
	long long max;
	int rc = hearth_json_get_str(doc, "mode", &mode);

	r->mode = HEARTH_MODE_SINGLE;
	r->max = 1;
	if (rc == 0) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
			if (!strcmp(mode, mode_names[i])) {
				r->mode = (enum hearth_recipe_mode)i;
				ok = true;
			}
		if (!ok)
			problem(p, "mode: must be \"single\", \"restart\", \"queued\" or "
			           "\"parallel\"");
	} else if (rc != -ENOENT) {
		problem(p, "mode: must be a string");
	}
	rc = hearth_json_get_int(doc, "max", &max);
	if (rc == 0 && (max < 1 || max > HEARTH_RECIPE_MAX_RUNS))
		problem(p, "max: must be from 1 to %d", HEARTH_RECIPE_MAX_RUNS);
	else if (rc == 0)
		r->max = (int)max;
	else if (rc != -ENOENT)
		problem(p, "max: must be a whole number from 1 to %d", HEARTH_RECIPE_MAX_RUNS);
}

/* consents: every element is checked; a name that is not a data class is not also "twice". */
static int
parse_consents(struct pctx *p, struct hearth_recipe *r, const cJSON *arr)
{
	int rc;

	if (!arr)
		return 0;
	if ((rc = parse_strings(p, arr, "consents", &r->consents, &r->nconsents)))
		return rc;
	for (int i = 0; i < r->nconsents; i++) {
		bool ok = false;

		if (!r->consents[i])
			continue;
		for (int k = 0; hearth_recipe_consent_names[k]; k++)
			ok = ok || !strcmp(r->consents[i], hearth_recipe_consent_names[k]);
		if (!ok) {
			problem(p,
			        "consents[%d]: \"%.64s\" is not a data class (presence, media, "
			        "audio, environment, energy, location, camera, device, other)",
			        i, r->consents[i]);
			continue;
		}
		for (int k = 0; k < i; k++)
			if (r->consents[k] && !strcmp(r->consents[k], r->consents[i])) {
				problem(p, "consents[%d]: \"%s\" is listed twice", i,
				        r->consents[i]);
				break;
			}
	}
	return 0;
}

static void
parse_targets(struct pctx *p, struct hearth_recipe *r, const cJSON *t)
{
	long long v;
	int rc;

	r->target_latency_ms = 0;
	r->target_max_approvals = -1;
	if (!t)
		return;
	if (!cJSON_IsObject(t)) {
		problem(p, "targets: must be an object {\"latency_ms\": N, \"max_approvals\": N}");
		return;
	}
	rc = hearth_json_get_int(t, "latency_ms", &v);
	if (rc == 0 && (v < 1 || v > 3600000))
		problem(p, "targets.latency_ms: must be from 1 to 3600000");
	else if (rc == 0)
		r->target_latency_ms = (int)v;
	else if (rc != -ENOENT)
		problem(p, "targets.latency_ms: must be a whole number of milliseconds");
	rc = hearth_json_get_int(t, "max_approvals", &v);
	if (rc == 0 && (v < 0 || v > 16))
		problem(p, "targets.max_approvals: must be from 0 to 16");
	else if (rc == 0)
		r->target_max_approvals = (int)v;
	else if (rc != -ENOENT)
		problem(p, "targets.max_approvals: must be a whole number");
}

static void
parse_approval(struct pctx *p, struct hearth_recipe *r, const cJSON *doc)
{
	const char *approval;
	int rc = hearth_json_get_str(doc, "approval", &approval);

	if (rc == 0) {
		if (!strcmp(approval, "auto"))
			r->approval = HEARTH_APPROVAL_AUTO;
		else if (!strcmp(approval, "always"))
			r->approval = HEARTH_APPROVAL_ALWAYS;
		else if (!strcmp(approval, "never"))
			r->approval = HEARTH_APPROVAL_NEVER;
		else
			problem(p, "approval: must be \"auto\", \"always\" or \"never\"");
	} else if (rc != -ENOENT) {
		problem(p, "approval: must be a string");
	}
}

/*
 * The whole document, every section in turn (each reports its own
 * problems). Returns 0 (problems are counted in p) or -ENOMEM.
 */
static int
parse_doc(struct pctx *p, struct hearth_recipe *r, const cJSON *doc)
{
	const cJSON *steps, *st, *intents;
	int i = 0;

	if (!cJSON_IsObject(doc)) {
		problem(p, "(top): a recipe is a JSON object");
		return 0;
	}
	if (dup_str(p, doc, "id", "", true, &r->id) == -ENOMEM)
		return -ENOMEM;
	if (r->id && !hearth_id_valid_str(r->id))
		problem(p, "id: must be 1-64 characters of A-Z a-z 0-9 _ . -");
	if (dup_str(p, doc, "version", "", true, &r->version) == -ENOMEM ||
	    dup_str(p, doc, "title", "", false, &r->title) == -ENOMEM)
		return -ENOMEM;
	intents = cJSON_GetObjectItemCaseSensitive(doc, "intents");
	if (!intents)
		problem(p, "intents: is required (the intent names this recipe serves)");
	else if (parse_strings(p, intents, "intents", &r->intents, &r->nintents) == -ENOMEM)
		return -ENOMEM;
	else if (cJSON_IsArray(intents) && r->nintents == 0)
		problem(p, "intents: must name at least one intent");
	if (parse_slots(p, r, cJSON_GetObjectItemCaseSensitive(doc, "slots")) == -ENOMEM ||
	    parse_sentences(p, r, cJSON_GetObjectItemCaseSensitive(doc, "sentences")) == -ENOMEM)
		return -ENOMEM;
	parse_run_mode(p, r, doc);
	if (parse_consents(p, r, cJSON_GetObjectItemCaseSensitive(doc, "consents")) == -ENOMEM)
		return -ENOMEM;
	parse_targets(p, r, cJSON_GetObjectItemCaseSensitive(doc, "targets"));
	parse_approval(p, r, doc);

	steps = cJSON_GetObjectItemCaseSensitive(doc, "steps");
	if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) == 0) {
		problem(p, "steps: must be a non-empty array");
		return 0;
	}
	r->nsteps = cJSON_GetArraySize(steps);
	if (r->nsteps > CONFIG_HEARTH_MAX_PLAN_STEPS)
		problem(p, "steps: %d steps, at most %d are allowed", r->nsteps,
		        CONFIG_HEARTH_MAX_PLAN_STEPS);
	r->steps = hearth_calloc((size_t)r->nsteps, sizeof(*r->steps));
	if (!r->steps)
		return -ENOMEM;
	cJSON_ArrayForEach(st, steps)
	{
		if (parse_step(p, r, st, i) == -ENOMEM)
			return -ENOMEM;
		i++;
	}
	return 0;
}

int
hearth_recipe_parse(const char *text, size_t len, const char *file, struct hearth_recipe **out,
                    char *why, size_t why_len)
{
	struct pctx p = {
	        .file = file,
	        .why = why,
	        .why_len = why_len,
	        .reserve = strlen(file) + sizeof("\n: ... and 2147483647 more problems"),
	};
	struct hearth_recipe *r;
	cJSON *doc;
	char jwhy[96];
	int rc;

	*out = NULL;
	if (why && why_len)
		why[0] = '\0';
	rc = hearth_json_parse(text, len, &doc, jwhy, sizeof(jwhy));
	if (rc == HEARTH_E_BAD_JSON) {
		snprintf(why, why_len, "%s: %s", file, jwhy);
		return rc;
	}
	if (rc)
		return rc;
	r = hearth_calloc(1, sizeof(*r));
	if (!r) {
		cJSON_Delete(doc);
		return -ENOMEM;
	}
	r->file = hearth_strdup(file);
	rc = r->file ? parse_doc(&p, r, doc) : -ENOMEM;
	cJSON_Delete(doc);
	if (rc) {
		snprintf(why, why_len, "%s: out of memory", file);
		hearth_recipe_free(r);
		return rc;
	}
	if (p.n) {
		problems_end(&p);
		hearth_recipe_free(r);
		return HEARTH_E_INVALID;
	}
	*out = r;
	return 0;
}

void
hearth_recipe_free(struct hearth_recipe *r)
{
	if (!r)
		return;
	for (int i = 0; r->intents && i < r->nintents; i++)
		hearth_free(r->intents[i]);
	for (int i = 0; r->sentences && i < r->nsentences; i++)
		hearth_free(r->sentences[i]);
	for (int i = 0; r->consents && i < r->nconsents; i++)
		hearth_free(r->consents[i]);
	hearth_free(r->sentences);
	hearth_free(r->consents);
	for (int i = 0; r->slots && i < r->nslots; i++) {
		hearth_free(r->slots[i].name);
		hearth_free(r->slots[i].type);
		cJSON_Delete(r->slots[i].def);
	}
	for (int i = 0; r->steps && i < r->nsteps; i++) {
		struct hearth_recipe_step *st = &r->steps[i];

		hearth_free(st->id);
		hearth_free(st->room);
		hearth_free(st->kind);
		cJSON_Delete(st->args);
		cJSON_Delete(st->holds);
		hearth_free(st->after);
	}
	hearth_free(r->intents);
	hearth_free(r->slots);
	hearth_free(r->steps);
	hearth_free(r->id);
	hearth_free(r->version);
	hearth_free(r->title);
	hearth_free(r->file);
	hearth_free(r);
}

const struct hearth_recipe_slot *
hearth_recipe_slot(const struct hearth_recipe *r, const char *name)
{
	for (int i = 0; i < r->nslots; i++)
		if (r->slots[i].name && !strcmp(r->slots[i].name, name))
			return &r->slots[i];
	return NULL;
}

/* ==== The book ==== */

static bool
book_has_id(const hearth_recipe_book *b, const char *id)
{
	for (int i = 0; i < b->n; i++)
		if (!strcmp(b->items[i]->id, id))
			return true;
	return false;
}

static int
read_file(const char *path, char **out, size_t *len)
{
	struct stat sb;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || sb.st_size > RECIPE_FILE_MAX) {
		close(fd);
		return HEARTH_E_TOO_LARGE;
	}
	buf = hearth_malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		hearth_free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

/* Hands each line of text ('\n'-separated problems) to report on its own. */
static void
report_lines(void (*report)(void *ud, const char *line), void *ud, char *text)
{
	char *line = text, *nl;

	if (!report)
		return;
	for (;;) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		report(ud, line);
		if (!nl)
			break;
		line = nl + 1;
	}
}

int
hearth_recipe_book_load(const char *dir, hearth_recipe_book **out,
                        void (*report)(void *ud, const char *line), void *ud, char *why,
                        size_t why_len)
{
	struct dirent **names;
	hearth_recipe_book *b;
	int n, rc = 0;

	*out = NULL;
	n = scandir(dir, &names, is_json, by_name);
	if (n < 0) {
		rc = -errno;
		snprintf(why, why_len, "cannot read recipe folder %s: %s", dir, strerror(-rc));
		return rc;
	}
	b = hearth_calloc(1, sizeof(*b));
	if (b)
		b->items = hearth_calloc((size_t)(n ? n : 1), sizeof(*b->items));
	if (!b || !b->items) {
		rc = -ENOMEM;
		snprintf(why, why_len, "out of memory loading %s", dir);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], line[8192];
		struct hearth_recipe *r;
		char *text = NULL;
		size_t len = 0;
		int e;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		e = read_file(path, &text, &len);
		if (e) {
			snprintf(line, sizeof(line), "%s: cannot read: %s", path,
			         hearth_strerror(e));
			if (report)
				report(ud, line);
			continue;
		}
		e = hearth_recipe_parse(text, len, path, &r, line, sizeof(line));
		hearth_free(text);
		if (e && !line[0])
			snprintf(line, sizeof(line), "%s: %s", path, hearth_strerror(e));
		if (!e && book_has_id(b, r->id)) {
			snprintf(line, sizeof(line),
			         "%s: id: \"%s\" is already loaded from another file", path, r->id);
			hearth_recipe_free(r);
			e = HEARTH_E_INVALID;
		}
		if (!e && b->n >= CONFIG_HEARTH_RECIPES_MAX) {
			snprintf(line, sizeof(line), "%s: more than %d recipes; not loaded", path,
			         CONFIG_HEARTH_RECIPES_MAX);
			hearth_recipe_free(r);
			e = HEARTH_E_FULL;
		}
		if (e) {
			report_lines(report, ud, line);
			continue;
		}
		b->items[b->n++] = r;
	}
	*out = b;
	b = NULL;
out:
	hearth_recipe_book_free(b);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

void
hearth_recipe_book_free(hearth_recipe_book *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n; i++)
		hearth_recipe_free(b->items[i]);
	hearth_free(b->items);
	hearth_free(b);
}

int
hearth_recipe_book_count(const hearth_recipe_book *b)
{
	return b->n;
}

const struct hearth_recipe *
hearth_recipe_book_at(const hearth_recipe_book *b, int i)
{
	return i >= 0 && i < b->n ? b->items[i] : NULL;
}

const struct hearth_recipe *
hearth_recipe_book_find(const hearth_recipe_book *b, const char *intent)
{
	for (int i = 0; i < b->n; i++)
		for (int j = 0; j < b->items[i]->nintents; j++)
			if (!strcmp(b->items[i]->intents[j], intent))
				return b->items[i];
	return NULL;
}
