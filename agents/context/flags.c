/*
 * flags.c - derived flags (see flags.h). A definition set is checked with the
 * constraint validator (one condition language for rules and flags, one set
 * of error messages), then compiled into a pool of nodes whose flag
 * references are indexes, sorted so that every flag comes after the flags it
 * reads (a cycle is refused at load), and evaluated in one pass in that
 * order. Room flags live in the same table and are made as references to
 * them or reports of them appear, up to a fixed bound. Evaluation is
 * three-valued (true, false, held) so a paused input freezes what depends on
 * it instead of flipping it. This module owns its definitions and values; it
 * never reads the clock, does no I/O and never logs.
 */
#include "agents/context/flags.h"

#include "memory/constraints.h"
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PATH_LEN 256
#define ROOM_PFX "room."
#define ROOM_SFX ".occupied"

enum node_kind { N_ALL, N_ANY, N_NOT, N_FLAG, N_DEVICE, N_TIME, N_ROOMS_ANY };

/* Three-valued results of a condition. */
enum { R_FALSE = 0, R_TRUE = 1, R_HOLD = 2 };

struct node {
	enum node_kind kind;
	int child, next; /* first child and next sibling, -1 for none */
	int flag;        /* N_FLAG: index of the flag read */
	bool is;         /* N_FLAG: the value wanted */
	char *device, *property;
	cJSON *value; /* N_DEVICE with "is" */
	bool has_lt, has_gt;
	double lt, gt;
	int from, to; /* N_TIME, minutes */
};

struct flag {
	char *name;
	char *room; /* room key of a room flag, else NULL */
	int root;   /* condition of a defined flag, -1 for a room flag */
	int def;    /* index in the configuration's array, -1 for a default */
	bool value, known, held, builtin;
	int mark; /* load: 0 unvisited, 1 on the path, 2 done */
};

struct hearth_flags {
	struct flag flags[HEARTH_FLAGS_MAX];
	int n;
	int rooms[HEARTH_FLAGS_ROOMS_MAX]; /* indexes of room flags */
	int nrooms;
	int order[HEARTH_FLAGS_MAX]; /* defined flags, dependencies first */
	int norder;
	struct node *nodes;
	int nnodes, capnodes;
	int rooms_dropped;
};

static const struct builtin {
	const char *name;
	const char *when; /* NULL: someone_home's "any room occupied" */
} builtins[] = {
        {"night", "{\"time\": {\"from\": \"22:00\", \"to\": \"06:00\"}}"},
        {"quiet_hours", "{\"time\": {\"from\": \"22:00\", \"to\": \"07:00\"}}"},
        {"someone_home", NULL},
        {"away", "{\"not\": {\"flag\": \"someone_home\", \"is\": true}}"},
};

#define NBUILTINS ((int)(sizeof(builtins) / sizeof(builtins[0])))

/* ==== Errors with a path ==== */

struct cctx {
	hearth_flags *f;
	const char *source;
	char *why;
	size_t why_len;
	char path[PATH_LEN];
	size_t plen;
};

static int fail(struct cctx *c, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* "<source>: <path>: <message>" into why; returns err. */
static int
fail(struct cctx *c, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!c->why || !c->why_len)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->why, c->why_len, "%s%s%s%s%s", c->source ? c->source : "",
	         c->source ? ": " : "", c->path, c->plen ? ": " : "", msg);
	return err;
}

static size_t push(struct cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append to the path; returns the old length for pop(). */
static size_t
push(struct cctx *c, const char *fmt, ...)
{
	size_t old = c->plen;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->path + old, sizeof(c->path) - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->plen = old + (size_t)n < sizeof(c->path) ? old + (size_t)n : sizeof(c->path) - 1;
	return old;
}

static void
pop(struct cctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

/* ==== Names ==== */

/* The room key rule of hearth_room_key (context.h): lowercase, '_' for '-' and ' '. */
static void
room_key(const char *room, size_t n, char *out, size_t len)
{
	size_t i;

	for (i = 0; i < n && room[i] && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)room[i];

		out[i] = (ch == '-' || ch == ' ') ? '_' : (char)tolower(ch);
	}
	out[i] = '\0';
}

/* The room of "room.<room>.occupied" as a key into key, or false. */
static bool
room_of(const char *name, char *key, size_t len)
{
	size_t n = strlen(name), p = strlen(ROOM_PFX), s = strlen(ROOM_SFX);

	if (n <= p + s || strncmp(name, ROOM_PFX, p) || strcmp(name + n - s, ROOM_SFX))
		return false;
	room_key(name + p, n - p - s, key, len);
	return true;
}

static int
find(const hearth_flags *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->flags[i].name, name))
			return i;
	return -1;
}

static int
find_room(const hearth_flags *f, const char *key)
{
	for (int i = 0; i < f->nrooms; i++)
		if (!strcmp(f->flags[f->rooms[i]].room, key))
			return f->rooms[i];
	return -1;
}

/* Index of the flag of room key, made when needed; -ENOMEM or HEARTH_E_FULL. */
static int
room_flag(hearth_flags *f, const char *key)
{
	struct flag *fl;
	size_t len;
	int i = find_room(f, key);

	if (i >= 0)
		return i;
	if (f->nrooms >= HEARTH_FLAGS_ROOMS_MAX || f->n >= HEARTH_FLAGS_MAX)
		return HEARTH_E_FULL;
	fl = &f->flags[f->n];
	memset(fl, 0, sizeof(*fl));
	len = strlen(ROOM_PFX) + strlen(key) + strlen(ROOM_SFX) + 1;
	fl->room = hearth_strdup(key);
	fl->name = hearth_malloc(len);
	if (!fl->room || !fl->name) {
		hearth_free(fl->room);
		hearth_free(fl->name);
		return -ENOMEM;
	}
	snprintf(fl->name, len, "%s%s%s", ROOM_PFX, key, ROOM_SFX);
	fl->root = -1;
	fl->def = -1;
	f->rooms[f->nrooms++] = f->n;
	return f->n++;
}

/* ==== Compiling conditions ==== */

static int
new_node(hearth_flags *f, enum node_kind kind)
{
	struct node *n;

	if (f->nnodes >= HEARTH_FLAGS_NODES_MAX)
		return HEARTH_E_TOO_LARGE;
	if (f->nnodes == f->capnodes) {
		int cap = f->capnodes ? f->capnodes * 2 : 64;
		struct node *p = hearth_realloc(f->nodes, (size_t)cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->nodes = p;
		f->capnodes = cap;
	}
	n = &f->nodes[f->nnodes];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->child = n->next = n->flag = -1;
	return f->nnodes++;
}

static int
hhmm(const char *s)
{
	return ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
}

/* The node count error, said where it happened. */
static int
node_err(struct cctx *c, int idx)
{
	if (idx == -ENOMEM)
		return idx;
	return fail(c, HEARTH_E_TOO_LARGE, "the flag definitions need more than %d conditions",
	            HEARTH_FLAGS_NODES_MAX);
}

static int compile(struct cctx *c, const cJSON *cond);

/* Children of an all / any, linked in order under parent. */
static int
compile_list(struct cctx *c, int parent, const cJSON *arr, const char *key)
{
	const cJSON *it;
	size_t old = push(c, ".%s", key), o2;
	int prev = -1, i = 0, k = 0;

	cJSON_ArrayForEach(it, arr)
	{
		o2 = push(c, "[%d]", i++);
		k = compile(c, it);
		pop(c, o2);
		if (k < 0)
			break;
		if (prev < 0)
			c->f->nodes[parent].child = k;
		else
			c->f->nodes[prev].next = k;
		prev = k;
	}
	pop(c, old);
	return k < 0 ? k : 0;
}

/* Node index of a condition the validator accepted, or a negative error. */
static int
compile(struct cctx *c, const cJSON *cond)
{
	hearth_flags *f = c->f;
	const cJSON *v;
	char key[HEARTH_ID_LEN_MAX + 1];
	size_t old;
	int idx, k, err;

	if ((v = cJSON_GetObjectItemCaseSensitive(cond, "all")) ||
	    (v = cJSON_GetObjectItemCaseSensitive(cond, "any"))) {
		bool all = !strcmp(v->string, "all");

		if ((idx = new_node(f, all ? N_ALL : N_ANY)) < 0)
			return node_err(c, idx);
		err = compile_list(c, idx, v, v->string);
		return err < 0 ? err : idx;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(cond, "not"))) {
		if ((idx = new_node(f, N_NOT)) < 0)
			return node_err(c, idx);
		old = push(c, ".not");
		k = compile(c, v);
		pop(c, old);
		if (k < 0)
			return k;
		f->nodes[idx].child = k;
		return idx;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(cond, "flag"))) {
		const char *name = v->valuestring;

		k = find(f, name);
		if (k < 0 && room_of(name, key, sizeof(key))) {
			k = room_flag(f, key);
			if (k == -ENOMEM)
				return k;
			if (k < 0) {
				old = push(c, ".flag");
				err = fail(c, HEARTH_E_TOO_LARGE,
				           "\"%s\": more than %d rooms are named in flags", name,
				           HEARTH_FLAGS_ROOMS_MAX);
				pop(c, old);
				return err;
			}
		}
		if (k < 0) {
			old = push(c, ".flag");
			err = fail(
			        c, HEARTH_E_INVALID,
			        "unknown flag \"%s\" (define it in \"flags\", or use someone_home, "
			        "night, quiet_hours, away or room.<room>.occupied)",
			        name);
			pop(c, old);
			return err;
		}
		if ((idx = new_node(f, N_FLAG)) < 0)
			return node_err(c, idx);
		f->nodes[idx].flag = k;
		f->nodes[idx].is = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cond, "is"));
		return idx;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(cond, "device"))) {
		struct node *n;
		const cJSON *is = cJSON_GetObjectItemCaseSensitive(cond, "is");
		double num;

		if ((idx = new_node(f, N_DEVICE)) < 0)
			return node_err(c, idx);
		n = &f->nodes[idx];
		n->device = hearth_strdup(v->valuestring);
		n->property = hearth_strdup(
		        cJSON_GetObjectItemCaseSensitive(cond, "property")->valuestring);
		if (is)
			n->value = cJSON_Duplicate(is, 1);
		if (!n->device || !n->property || (is && !n->value))
			return -ENOMEM;
		n->has_lt = !hearth_json_get_num(cond, "lt", &num);
		if (n->has_lt)
			n->lt = num;
		n->has_gt = !hearth_json_get_num(cond, "gt", &num);
		if (n->has_gt)
			n->gt = num;
		return idx;
	}
	v = cJSON_GetObjectItemCaseSensitive(cond, "time");
	if ((idx = new_node(f, N_TIME)) < 0)
		return node_err(c, idx);
	f->nodes[idx].from = hhmm(cJSON_GetObjectItemCaseSensitive(v, "from")->valuestring);
	f->nodes[idx].to = hhmm(cJSON_GetObjectItemCaseSensitive(v, "to")->valuestring);
	return idx;
}

/* ==== Loading ==== */

/*
 * Check a condition with the constraint validator by wrapping it in a rule;
 * its message starts at "when", which is where the flag's condition is.
 */
static int
validate_when(struct cctx *c, const cJSON *when)
{
	cJSON *rule = cJSON_CreateObject(), *forbid, *copy = NULL;
	char msg[320];
	int err;

	/* a copy, not a reference: cJSON leaks a reference it fails to add */
	if (!rule || !cJSON_AddStringToObject(rule, "id", "flag") ||
	    !cJSON_AddStringToObject(rule, "reason", "flag") ||
	    !(forbid = cJSON_AddObjectToObject(rule, "forbid")) ||
	    !cJSON_AddStringToObject(forbid, "capability", "flag") ||
	    !(copy = cJSON_Duplicate(when, 1)) || !cJSON_AddItemToObject(rule, "when", copy)) {
		cJSON_Delete(copy); /* not added: adding is the last step */
		cJSON_Delete(rule);
		return -ENOMEM;
	}
	msg[0] = '\0';
	err = hearth_constraint_validate(rule, NULL, msg, sizeof(msg));
	cJSON_Delete(rule);
	if (!err)
		return 0;
	/* msg is "when...: what"; the path so far ends in "flags[i]" */
	{
		size_t old = push(c, ".");
		char *colon = strstr(msg, ": ");

		if (colon) {
			*colon = '\0';
			push(c, "%s", msg);
			err = fail(c, err, "%s", colon + 2);
		} else {
			pop(c, old);
			err = fail(c, err, "%s", msg);
		}
		pop(c, old);
	}
	return err;
}

/* First pass over one configured definition: shape, name and condition. */
static int
check_def(struct cctx *c, const cJSON *def, int i)
{
	const cJSON *name, *when, *m, *o;
	size_t old;
	int err = 0;

	if (!cJSON_IsObject(def))
		return fail(c, HEARTH_E_INVALID,
		            "expected a flag object {\"name\": ..., \"when\": ...}, got %s",
		            hearth_json_type_name(def));
	cJSON_ArrayForEach(m, def)
	{
		if (strcmp(m->string, "name") && strcmp(m->string, "when")) {
			old = push(c, ".%s", m->string);
			err = fail(c, HEARTH_E_INVALID,
			           "unknown key (expected one of: name, when)");
			pop(c, old);
			return err;
		}
		for (o = m->next; o; o = o->next)
			if (!strcmp(m->string, o->string))
				return fail(c, HEARTH_E_INVALID, "key \"%s\" appears twice",
				            m->string);
	}
	name = cJSON_GetObjectItemCaseSensitive(def, "name");
	when = cJSON_GetObjectItemCaseSensitive(def, "when");
	if (!name)
		return fail(c, HEARTH_E_INVALID, "missing \"name\"");
	old = push(c, ".name");
	if (!cJSON_IsString(name))
		err = fail(c, HEARTH_E_INVALID, "expected a string, got %s",
		           hearth_json_type_name(name));
	else if (!hearth_id_valid_str(name->valuestring))
		err = fail(c, HEARTH_E_INVALID,
		           "\"%s\" is not a flag name (1 to %d characters of A-Z a-z 0-9 _ . -)",
		           name->valuestring, HEARTH_ID_LEN_MAX);
	else if (!strncmp(name->valuestring, ROOM_PFX, strlen(ROOM_PFX)))
		err = fail(c, HEARTH_E_INVALID,
		           "\"%s\": names starting with \"room.\" are the hub's room flags",
		           name->valuestring);
	else if (find(c->f, name->valuestring) >= 0)
		err = fail(c, HEARTH_E_INVALID, "\"%s\" is also the name of flags[%d]",
		           name->valuestring, c->f->flags[find(c->f, name->valuestring)].def);
	pop(c, old);
	if (err)
		return err;
	if (!when)
		return fail(c, HEARTH_E_INVALID, "missing \"when\" (the flag's condition)");
	err = validate_when(c, when);
	if (err)
		return err;
	if (!(c->f->flags[c->f->n].name = hearth_strdup(name->valuestring)))
		return -ENOMEM;
	c->f->flags[c->f->n].def = i;
	c->f->flags[c->f->n].root = -1;
	c->f->n++;
	return 0;
}

/* Depth-first walk of the flags node idx reads (defined flags only). */
static int visit(struct cctx *c, int fl, int *stack, int depth);

static int
visit_node(struct cctx *c, int idx, int *stack, int depth)
{
	const struct node *n = &c->f->nodes[idx];
	int err = 0;

	if (n->kind == N_FLAG && c->f->flags[n->flag].root >= 0)
		return visit(c, n->flag, stack, depth);
	for (int k = n->child; k >= 0 && !err; k = c->f->nodes[k].next)
		err = visit_node(c, k, stack, depth);
	return err;
}

/* Report the cycle stack[from..depth) + fl at a configured flag of it. */
static int
cycle(struct cctx *c, int *stack, int from, int depth, int fl)
{
	char chain[512];
	size_t n = 0;
	int at = -1;

	chain[0] = '\0';
	for (int i = from; i <= depth; i++) {
		int k = i < depth ? stack[i] : fl;
		int w = snprintf(chain + n, sizeof(chain) - n, "%s%s", i > from ? " -> " : "",
		                 c->f->flags[k].name);

		if (w > 0 && (size_t)w < sizeof(chain) - n)
			n += (size_t)w;
		if (at < 0 && i < depth && c->f->flags[k].def >= 0)
			at = k;
	}
	if (at < 0)
		at = fl;
	pop(c, 0);
	push(c, "flags[%d].when", c->f->flags[at].def);
	return fail(c, HEARTH_E_INVALID, "flag \"%s\" depends on itself: %s", c->f->flags[at].name,
	            chain);
}

static int
visit(struct cctx *c, int fl, int *stack, int depth)
{
	struct flag *f = &c->f->flags[fl];
	int err;

	if (f->mark == 2)
		return 0;
	if (f->mark == 1) {
		for (int i = 0; i < depth; i++)
			if (stack[i] == fl)
				return cycle(c, stack, i, depth, fl);
		return HEARTH_E_INVALID;
	}
	f->mark = 1;
	stack[depth] = fl;
	err = visit_node(c, f->root, stack, depth + 1);
	if (err)
		return err;
	f->mark = 2;
	c->f->order[c->f->norder++] = fl;
	return 0;
}

int
hearth_flags_load(const cJSON *defs, const char *source, hearth_flags **out, char *why,
                  size_t why_len)
{
	struct cctx c = {.source = source, .why = why, .why_len = why_len};
	int stack[HEARTH_FLAGS_MAX];
	int err = 0, i = 0, ndefs;
	const cJSON *d;

	*out = NULL;
	if (why && why_len)
		why[0] = '\0';
	if (!(c.f = hearth_calloc(1, sizeof(*c.f))))
		return -ENOMEM;
	push(&c, "flags");
	if (defs && !cJSON_IsArray(defs)) {
		err = fail(&c, HEARTH_E_INVALID, "expected an array of flag definitions, got %s",
		           hearth_json_type_name(defs));
		goto fail_set;
	}
	ndefs = defs ? cJSON_GetArraySize(defs) : 0;
	if (ndefs > HEARTH_FLAGS_DEFINED_MAX) {
		err = fail(&c, HEARTH_E_TOO_LARGE, "%d flags, at most %d are allowed", ndefs,
		           HEARTH_FLAGS_DEFINED_MAX);
		goto fail_set;
	}
	for (d = defs ? defs->child : NULL; d; d = d->next, i++) {
		size_t old = push(&c, "[%d]", i);

		err = check_def(&c, d, i);
		pop(&c, old);
		if (err)
			goto fail_set;
	}
	for (i = 0; i < NBUILTINS; i++) {
		if (find(c.f, builtins[i].name) >= 0)
			continue;
		if (!(c.f->flags[c.f->n].name = hearth_strdup(builtins[i].name))) {
			err = -ENOMEM;
			goto fail_set;
		}
		c.f->flags[c.f->n].def = -1;
		c.f->flags[c.f->n].root = -1;
		c.f->flags[c.f->n].builtin = true;
		c.f->n++;
	}
	/* compile: every defined flag exists now, so references resolve forward too */
	for (int fl = 0, nd = c.f->n; fl < nd; fl++) {
		struct flag *f = &c.f->flags[fl];
		cJSON *def = NULL;
		int root;

		if (f->def >= 0) {
			pop(&c, 0);
			push(&c, "flags[%d].when", f->def);
			root = compile(&c, cJSON_GetObjectItemCaseSensitive(
			                           cJSON_GetArrayItem(defs, f->def), "when"));
		} else {
			const struct builtin *b = builtins;

			while (strcmp(b->name, f->name))
				b++;
			pop(&c, 0);
			push(&c, "built-in flag %s", b->name);
			if (!b->when) {
				root = new_node(c.f, N_ROOMS_ANY);
				if (root < 0)
					root = node_err(&c, root);
			} else if (!(def = cJSON_Parse(b->when))) {
				root = -ENOMEM;
			} else {
				root = compile(&c, def);
				cJSON_Delete(def);
			}
		}
		if (root < 0) {
			err = root;
			goto fail_set;
		}
		c.f->flags[fl].root = root;
	}
	for (int fl = 0; fl < c.f->n; fl++) {
		if (c.f->flags[fl].root < 0)
			continue;
		pop(&c, 0);
		if ((err = visit(&c, fl, stack, 0)))
			goto fail_set;
	}
	*out = c.f;
	return 0;

fail_set:
	hearth_flags_free(c.f);
	return err;
}

void
hearth_flags_free(hearth_flags *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++) {
		hearth_free(f->flags[i].name);
		hearth_free(f->flags[i].room);
	}
	for (int i = 0; i < f->nnodes; i++) {
		hearth_free(f->nodes[i].device);
		hearth_free(f->nodes[i].property);
		cJSON_Delete(f->nodes[i].value);
	}
	hearth_free(f->nodes);
	hearth_free(f);
}

/* ==== Evaluation ==== */

static bool
in_window(int minute, int from, int to)
{
	if (from < to)
		return minute >= from && minute < to;
	return minute >= from || minute < to;
}

static int
eval_device(const struct node *n, const struct hearth_flag_inputs *in)
{
	const cJSON *v = NULL;
	enum hearth_flag_input r;

	if (!in->lookup)
		return R_FALSE;
	r = in->lookup(in->ud, n->device, n->property, &v);
	if (r == HEARTH_FLAG_INPUT_HOLD)
		return R_HOLD;
	if (r != HEARTH_FLAG_INPUT_OK || !v)
		return R_FALSE;
	if (n->value)
		return hearth_json_value_equal(n->value, v, 1e-9) ? R_TRUE : R_FALSE;
	if (!cJSON_IsNumber(v))
		return R_FALSE;
	if (n->has_lt && !(v->valuedouble < n->lt))
		return R_FALSE;
	if (n->has_gt && !(v->valuedouble > n->gt))
		return R_FALSE;
	return R_TRUE;
}

static int
eval(const hearth_flags *f, int idx, const struct hearth_flag_inputs *in)
{
	const struct node *n = &f->nodes[idx];
	int r, acc;

	switch (n->kind) {
	case N_ALL:
	case N_ANY:
		/* all: false decides; any: true decides; otherwise a hold holds */
		acc = n->kind == N_ALL ? R_TRUE : R_FALSE;
		for (int k = n->child; k >= 0; k = f->nodes[k].next) {
			r = eval(f, k, in);
			if (r == (n->kind == N_ALL ? R_FALSE : R_TRUE))
				return r;
			if (r == R_HOLD)
				acc = R_HOLD;
		}
		return acc;
	case N_NOT:
		r = eval(f, n->child, in);
		return r == R_HOLD ? R_HOLD : !r;
	case N_FLAG:
		return f->flags[n->flag].value == n->is ? R_TRUE : R_FALSE;
	case N_DEVICE:
		return eval_device(n, in);
	case N_TIME:
		return in_window(in->minute, n->from, n->to) ? R_TRUE : R_FALSE;
	case N_ROOMS_ANY:
		for (int i = 0; i < f->nrooms; i++)
			if (f->flags[f->rooms[i]].value)
				return R_TRUE;
		return R_FALSE;
	}
	return R_FALSE;
}

/* Set flag fl to v, noting a change. */
static void
settle(hearth_flags *f, int fl, bool v, struct hearth_flag_change *changes, int max, int *nch)
{
	struct flag *x = &f->flags[fl];

	if (x->known && x->value == v)
		return;
	x->known = true;
	x->value = v;
	if (*nch < max) {
		changes[*nch].name = x->name;
		changes[*nch].value = v;
	}
	(*nch)++;
}

int
hearth_flags_eval(hearth_flags *f, const struct hearth_flag_inputs *in,
                  struct hearth_flag_change *changes, int max)
{
	bool occ[HEARTH_FLAGS_ROOMS_MAX] = {false};
	char key[HEARTH_ID_LEN_MAX + 1];
	int nch = 0, dropped = 0;

	if (!changes)
		max = 0;
	for (int i = 0; i < in->nrooms; i++) {
		int fl, r;

		if (!in->rooms[i].room || !in->rooms[i].room[0])
			continue;
		room_key(in->rooms[i].room, SIZE_MAX, key, sizeof(key));
		fl = room_flag(f, key);
		if (fl < 0) {
			dropped++;
			continue;
		}
		for (r = 0; f->rooms[r] != fl; r++)
			;
		occ[r] = occ[r] || in->rooms[i].occupied;
	}
	f->rooms_dropped = dropped;
	for (int r = 0; r < f->nrooms; r++)
		settle(f, f->rooms[r], occ[r], changes, max, &nch);
	for (int i = 0; i < f->norder; i++) {
		int fl = f->order[i], r = eval(f, f->flags[fl].root, in);

		f->flags[fl].held = r == R_HOLD;
		if (r != R_HOLD)
			settle(f, fl, r == R_TRUE, changes, max, &nch);
	}
	return nch;
}

/* ==== Queries ==== */

bool
hearth_flags_uses_device(const hearth_flags *f, const char *device)
{
	for (int i = 0; i < f->nnodes; i++)
		if (f->nodes[i].kind == N_DEVICE && !strcmp(f->nodes[i].device, device))
			return true;
	return false;
}

int
hearth_flags_get(const hearth_flags *f, const char *name)
{
	char key[HEARTH_ID_LEN_MAX + 1];
	int i = find(f, name);

	if (i >= 0)
		return f->flags[i].value ? 1 : 0;
	if (room_of(name, key, sizeof(key))) {
		i = find_room(f, key);
		return i >= 0 && f->flags[i].value ? 1 : 0;
	}
	return HEARTH_E_NOT_FOUND;
}

int
hearth_flags_count(const hearth_flags *f)
{
	return f->nrooms + f->norder;
}

int
hearth_flags_at(const hearth_flags *f, int i, struct hearth_flag_info *out)
{
	const struct flag *x;

	if (i < 0 || i >= f->nrooms + f->norder)
		return HEARTH_E_NOT_FOUND;
	x = &f->flags[i < f->nrooms ? f->rooms[i] : f->order[i - f->nrooms]];
	out->name = x->name;
	out->value = x->value;
	out->known = x->known;
	out->held = x->held;
	out->builtin = x->builtin;
	out->room = x->room != NULL;
	return 0;
}

cJSON *
hearth_flags_json(const hearth_flags *f)
{
	cJSON *o = cJSON_CreateObject(), *flags, *held;
	struct hearth_flag_info info;

	if (!o || !(flags = cJSON_AddObjectToObject(o, "flags")) ||
	    !(held = cJSON_AddArrayToObject(o, "held")) ||
	    !cJSON_AddNumberToObject(o, "rooms_dropped", f->rooms_dropped))
		goto fail_json;
	for (int i = 0; !hearth_flags_at(f, i, &info); i++) {
		if (info.known && !cJSON_AddBoolToObject(flags, info.name, info.value))
			goto fail_json;
		if (info.held) {
			cJSON *s = cJSON_CreateString(info.name);

			if (!s || !cJSON_AddItemToArray(held, s)) {
				cJSON_Delete(s);
				goto fail_json;
			}
		}
	}
	return o;

fail_json:
	cJSON_Delete(o);
	return NULL;
}
