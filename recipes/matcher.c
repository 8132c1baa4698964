/*
 * matcher.c - sentence templates compiled into small trees and matched by
 * backtracking over the normalized words of an utterance.
 *
 * An utterance has a few words and a home a few hundred templates, so a
 * depth-first walk with a continuation stack (no heap during a match except
 * the result) finishes in microseconds. A step budget bounds pathological
 * templates.
 */
#include "recipes/matcher.h"

#include "platform/alloc.h"
#include "platform/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX      48 /* words of an utterance considered */
#define WORD_MAX     32 /* bytes of a word */
#define ROOM_WORDS   4  /* words of a room name */
#define STEP_BUDGET  200000
#define SLOT_VAL_MAX 64

enum slot_type { ST_STRING, ST_ROOM, ST_NUMBER, ST_PERCENT, ST_TEMPERATURE };

enum node_kind { N_WORD, N_GROUP, N_SLOT };

struct node {
	enum node_kind kind;
	char *word;         /* N_WORD */
	struct node **alts; /* N_GROUP: heads of the alternatives (NULL: empty) */
	int nalts;
	bool optional;       /* N_GROUP */
	char *slot;          /* N_SLOT: name */
	enum slot_type type; /* N_SLOT */
	bool may_omit;       /* N_SLOT: the recipe does not require it */
	struct node *next;
};

struct tmpl {
	char *intent;
	const void *tag;
	struct node *root;
};

struct room {
	char words[ROOM_WORDS][WORD_MAX];
	int n;
	char *canonical;
};

struct hearth_matcher {
	struct tmpl *t;
	int n, cap;
	struct room *rooms;
	int nrooms, caprooms;
	hearth_matcher_room_fn room_fn;
	void *room_ud;
	struct node **all; /* every node, for freeing */
	int nall, capall;
};

/* ==== Words ==== */

static const char *const fillers[] = {
        "please", "pls",   "hey",   "hi",      "hello", "hearth", "the", "a",
        "an",     "to",    "my",    "now",     "just",  "kindly", "ok",  "okay",
        "thanks", "lets",  "some",  "quickly", "right", "yo",     "oh",  "um",
        "uh",     "would", "could", "can",     "will",  "you",    "me",  "for",
};

/* Words dropped only in these pairs (the second word alone is kept). */
static const char *const filler_pairs[][2] = {
        {"thank", "you"},
};

static bool
is_filler(const char *w)
{
	for (size_t i = 0; i < sizeof(fillers) / sizeof(fillers[0]); i++)
		if (!strcmp(w, fillers[i]))
			return true;
	return false;
}

struct words {
	char w[TOK_MAX][WORD_MAX];   /* compared with template words: stemmed */
	char raw[TOK_MAX][WORD_MAX]; /* as said (lowercase): for room names */
	int n;
};

static void
push_word(struct words *ws, const char *w, size_t len)
{
	if (len == 0 || ws->n >= TOK_MAX)
		return;
	if (len >= WORD_MAX)
		len = WORD_MAX - 1;
	memcpy(ws->raw[ws->n], w, len);
	ws->raw[ws->n][len] = '\0';
	/* "lights" is "light", "degrees" "degree" (not "glass", "celsius") */
	if (len > 3 && w[len - 1] == 's' && w[len - 2] != 's' && w[len - 2] != 'u' &&
	    isalpha((unsigned char)w[len - 2]))
		len--;
	memcpy(ws->w[ws->n], w, len);
	ws->w[ws->n][len] = '\0';
	ws->n++;
}

/* Split text into lowercase words; '%' and '°' become words. */
static void
split(const char *text, size_t len, struct words *ws)
{
	char cur[WORD_MAX];
	size_t n = 0;
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		bool digit = isdigit(c), alpha = isalpha(c) || c >= 0x80;

		if (c == 0xc2 && i + 1 < len && s[i + 1] == 0xb0) { /* ° */
			push_word(ws, cur, n);
			n = 0;
			push_word(ws, "degrees", 7);
			i++;
			continue;
		}
		if (c == 0xe2 && i + 2 < len && s[i + 1] == 0x80 &&
		    (s[i + 2] == 0x99 || s[i + 2] == 0x98)) { /* ’ ‘ */
			i += 2;
			continue;
		}
		if (c == '\'')
			continue; /* "what's" is "whats" */
		if (c == '%') {
			push_word(ws, cur, n);
			n = 0;
			push_word(ws, "percent", 7);
			continue;
		}
		if ((c == '.' || c == ',') && n > 0 && isdigit((unsigned char)cur[n - 1]) &&
		    i + 1 < len && isdigit(s[i + 1])) {
			if (n < WORD_MAX - 1)
				cur[n++] = '.';
			continue;
		}
		if (digit || alpha) {
			/* "21c", "21degrees": digits and letters are separate words */
			if (n > 0 && (digit != !!isdigit((unsigned char)cur[n - 1])) &&
			    cur[n - 1] != '.') {
				push_word(ws, cur, n);
				n = 0;
			}
			if (n < WORD_MAX - 1)
				cur[n++] = (char)tolower(c);
			continue;
		}
		push_word(ws, cur, n);
		n = 0;
	}
	push_word(ws, cur, n);
}

static void
drop_fillers(struct words *ws)
{
	int o = 0;

	for (int i = 0; i < ws->n; i++) {
		bool pair = false;

		for (size_t p = 0; p < sizeof(filler_pairs) / sizeof(filler_pairs[0]); p++)
			if (i + 1 < ws->n && !strcmp(ws->raw[i], filler_pairs[p][0]) &&
			    !strcmp(ws->raw[i + 1], filler_pairs[p][1])) {
				pair = true;
				break;
			}
		if (pair) {
			i++;
			continue;
		}
		if (is_filler(ws->raw[i]))
			continue;
		if (o != i) {
			memcpy(ws->w[o], ws->w[i], WORD_MAX);
			memcpy(ws->raw[o], ws->raw[i], WORD_MAX);
		}
		o++;
	}
	ws->n = o;
}

static void
normalize(const char *text, size_t len, struct words *ws)
{
	ws->n = 0;
	split(text, len, ws);
	drop_fillers(ws);
}

void
hearth_matcher_normalize(const char *text, char *out, size_t len)
{
	struct words ws;
	size_t o = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	normalize(text, strlen(text), &ws);
	for (int i = 0; i < ws.n; i++) {
		int k = snprintf(out + o, len - o, "%s%s", i ? " " : "", ws.w[i]);

		if (k < 0 || (size_t)k >= len - o)
			break;
		o += (size_t)k;
	}
}

/* ==== Numbers ==== */

static const char *const small_numbers[] = {
        "zero",     "one",     "two",     "three",     "four",     "five",     "six",
        "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
};
static const char *const tens[] = {"twenty", "thirty",  "forty",  "fifty",
                                   "sixty",  "seventy", "eighty", "ninety"};

static int
word_small(const char *w)
{
	for (int i = 0; i < 20; i++)
		if (!strcmp(w, small_numbers[i]))
			return i;
	return -1;
}

static int
word_tens(const char *w)
{
	for (int i = 0; i < 8; i++)
		if (!strcmp(w, tens[i]))
			return 20 + 10 * i;
	return -1;
}

static bool
digits_value(const char *w, double *v)
{
	char *end;
	int dots = 0;

	if (!isdigit((unsigned char)w[0]))
		return false;
	for (const char *p = w; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!isdigit((unsigned char)*p))
			return false;
	}
	if (dots > 1)
		return false;
	*v = strtod(w, &end);
	return *end == '\0';
}

/*
 * Numbers said at pos: up to two readings (e.g. "twenty" and "twenty one").
 * Returns how many; lens[i] words give vals[i].
 */
static int
numbers_at(const struct words *ws, int pos, int lens[3], double vals[3])
{
	int k = 0, t, s;
	double v;

	if (pos >= ws->n)
		return 0;
	if (digits_value(ws->w[pos], &v)) {
		lens[k] = 1;
		vals[k++] = v;
		if (pos + 2 < ws->n + 0 && !strcmp(ws->w[pos + 1], "point") &&
		    isdigit((unsigned char)ws->w[pos + 2][0]) && digits_value(ws->w[pos + 2], &v) &&
		    !strchr(ws->w[pos + 2], '.')) {
			char buf[2 * WORD_MAX + 2];

			snprintf(buf, sizeof(buf), "%s.%s", ws->w[pos], ws->w[pos + 2]);
			lens[k] = 3;
			vals[k++] = strtod(buf, NULL);
		}
		return k;
	}
	if ((s = word_small(ws->w[pos])) >= 0) {
		lens[k] = 1;
		vals[k++] = s;
		if (s == 1 && pos + 1 < ws->n && !strcmp(ws->w[pos + 1], "hundred")) {
			lens[k] = 2;
			vals[k++] = 100;
		}
		return k;
	}
	if (!strcmp(ws->w[pos], "hundred")) {
		lens[k] = 1;
		vals[k++] = 100;
		return k;
	}
	if ((t = word_tens(ws->w[pos])) >= 0) {
		lens[k] = 1;
		vals[k++] = t;
		if (pos + 1 < ws->n && (s = word_small(ws->w[pos + 1])) >= 1 && s <= 9) {
			lens[k] = 2;
			vals[k++] = t + s;
		}
		return k;
	}
	return 0;
}

/* ==== Compiling ==== */

static struct node *
node_new(hearth_matcher *m, enum node_kind kind)
{
	struct node *n;

	if (m->nall == m->capall) {
		int cap = m->capall ? 2 * m->capall : 64;
		struct node **all = hearth_realloc(m->all, (size_t)cap * sizeof(*all));

		if (!all)
			return NULL;
		m->all = all;
		m->capall = cap;
	}
	n = hearth_calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	m->all[m->nall++] = n;
	return n;
}

static void
node_free(struct node *n)
{
	hearth_free(n->word);
	hearth_free(n->alts);
	hearth_free(n->slot);
	hearth_free(n);
}

struct cctx {
	hearth_matcher *m;
	const char *s;
	size_t pos, len;
	const struct hearth_recipe_slot *slots;
	int nslots;
	char *why;
	size_t wl;
	int depth;
};

static int
cerr(struct cctx *c, const char *what)
{
	snprintf(c->why, c->wl, "template \"%.80s\": %s at offset %zu", c->s, what, c->pos);
	return HEARTH_E_INVALID;
}

static enum slot_type
slot_type_of(const struct cctx *c, const char *name, bool *may_omit)
{
	*may_omit = false;
	for (int i = 0; i < c->nslots; i++) {
		const char *t = c->slots[i].type;

		if (!c->slots[i].name || strcmp(c->slots[i].name, name) || !t)
			continue;
		*may_omit = !c->slots[i].required;
		if (!strcmp(t, "room"))
			return ST_ROOM;
		if (!strcmp(t, "number"))
			return ST_NUMBER;
		if (!strcmp(t, "percent"))
			return ST_PERCENT;
		if (!strcmp(t, "temperature"))
			return ST_TEMPERATURE;
		return ST_STRING;
	}
	return ST_STRING;
}

/* Append n after *tail. */
static void
link(struct node **head, struct node **tail, struct node *n)
{
	if (*tail)
		(*tail)->next = n;
	else
		*head = n;
	*tail = n;
}

static int parse_alts(struct cctx *c, char close, struct node *group);

/* A sequence up to '|', the closing bracket or the end. */
static int
parse_seq(struct cctx *c, struct node **head)
{
	struct node *tail = NULL, *n;
	int rc;

	*head = NULL;
	while (c->pos < c->len) {
		char ch = c->s[c->pos];

		if (ch == '|' || ch == ')' || ch == ']')
			return 0;
		if (ch == '(' || ch == '[') {
			if (++c->depth > 8)
				return cerr(c, "nested too deep");
			if (!(n = node_new(c->m, N_GROUP)))
				return -ENOMEM;
			n->optional = ch == '[';
			c->pos++;
			if ((rc = parse_alts(c, ch == '(' ? ')' : ']', n)))
				return rc;
			c->depth--;
			link(head, &tail, n);
			continue;
		}
		if (ch == '{') {
			size_t start = ++c->pos;
			char name[HEARTH_SLOT_NAME_MAX];

			while (c->pos < c->len && c->s[c->pos] != '}')
				c->pos++;
			if (c->pos >= c->len)
				return cerr(c, "unclosed '{'");
			if (c->pos == start || c->pos - start >= sizeof(name))
				return cerr(c, "bad slot name");
			memcpy(name, c->s + start, c->pos - start);
			name[c->pos - start] = '\0';
			c->pos++;
			if (!(n = node_new(c->m, N_SLOT)) || !(n->slot = hearth_strdup(name)))
				return -ENOMEM;
			n->type = slot_type_of(c, name, &n->may_omit);
			link(head, &tail, n);
			continue;
		}
		if (ch == '}')
			return cerr(c, "stray '}'");
		/* plain text up to the next special character: one chunk, so
		 * filler pairs inside it go as they do in utterances */
		{
			size_t start = c->pos;
			struct words ws;

			while (c->pos < c->len && !strchr("()[]{}|", c->s[c->pos]))
				c->pos++;
			normalize(c->s + start, c->pos - start, &ws);
			for (int i = 0; i < ws.n; i++) {
				if (!(n = node_new(c->m, N_WORD)) ||
				    !(n->word = hearth_strdup(ws.w[i])))
					return -ENOMEM;
				link(head, &tail, n);
			}
		}
	}
	return 0;
}

static int
parse_alts(struct cctx *c, char close, struct node *group)
{
	for (;;) {
		struct node *head, **alts;
		int rc = parse_seq(c, &head);

		if (rc)
			return rc;
		alts = hearth_realloc(group->alts, (size_t)(group->nalts + 1) * sizeof(*alts));
		if (!alts)
			return -ENOMEM;
		group->alts = alts;
		group->alts[group->nalts++] = head;
		if (c->pos >= c->len)
			return close ? cerr(c, close == ')' ? "unclosed '('" : "unclosed '['") : 0;
		if (c->s[c->pos] == '|') {
			c->pos++;
			continue;
		}
		if (c->s[c->pos] != close)
			return cerr(c, "mismatched bracket");
		c->pos++;
		return 0;
	}
}

int
hearth_matcher_new(hearth_matcher **out)
{
	*out = hearth_calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void
hearth_matcher_free(hearth_matcher *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nall; i++)
		node_free(m->all[i]);
	for (int i = 0; i < m->n; i++)
		hearth_free(m->t[i].intent);
	for (int i = 0; i < m->nrooms; i++)
		hearth_free(m->rooms[i].canonical);
	hearth_free(m->all);
	hearth_free(m->t);
	hearth_free(m->rooms);
	hearth_free(m);
}

/* Could the tree match nothing at all? */
static bool
nullable(const struct node *n)
{
	for (; n; n = n->next) {
		bool any = false;

		if (n->kind != N_GROUP)
			return false;
		if (n->optional)
			continue;
		for (int i = 0; i < n->nalts && !any; i++)
			any = nullable(n->alts[i]);
		if (!any)
			return false;
	}
	return true;
}

int
hearth_matcher_add(hearth_matcher *m, const char *intent, const char *tmpl,
                   const struct hearth_recipe_slot *slots, int nslots, const void *tag, char *why,
                   size_t why_len)
{
	struct cctx c = {.m = m,
	                 .s = tmpl,
	                 .len = strlen(tmpl),
	                 .slots = slots,
	                 .nslots = nslots,
	                 .why = why,
	                 .wl = why_len};
	struct node group = {.kind = N_GROUP};
	struct tmpl *t;
	int rc;

	if (why_len)
		why[0] = '\0';
	rc = parse_alts(&c, 0, &group);
	if (rc == 0 && (group.nalts != 1 || c.pos != c.len))
		rc = cerr(&c, "'|' outside brackets");
	if (rc == 0 && nullable(group.alts[0]))
		rc = cerr(&c, "matches an empty sentence");
	if (rc) {
		hearth_free(group.alts);
		return rc;
	}
	if (m->n == m->cap) {
		int cap = m->cap ? 2 * m->cap : 16;

		t = hearth_realloc(m->t, (size_t)cap * sizeof(*t));
		if (!t) {
			hearth_free(group.alts);
			return -ENOMEM;
		}
		m->t = t;
		m->cap = cap;
	}
	t = &m->t[m->n];
	t->root = group.alts[0];
	hearth_free(group.alts);
	t->tag = tag;
	if (!(t->intent = hearth_strdup(intent)))
		return -ENOMEM;
	m->n++;
	return 0;
}

int
hearth_matcher_add_book(hearth_matcher *m, const hearth_recipe_book *book,
                        void (*report)(void *ud, const char *line), void *ud)
{
	for (int i = 0; i < hearth_recipe_book_count(book); i++) {
		const struct hearth_recipe *r = hearth_recipe_book_at(book, i);

		for (int j = 0; r->nintents > 0 && j < r->nsentences; j++) {
			char why[256], line[384];
			int rc = hearth_matcher_add(m, r->intents[0], r->sentences[j], r->slots,
			                            r->nslots, r, why, sizeof(why));

			if (rc == -ENOMEM)
				return rc;
			if (rc && report) {
				snprintf(line, sizeof(line), "%s: sentences[%d]: %s", r->id, j,
				         why);
				report(ud, line);
			}
		}
	}
	return 0;
}

int
hearth_matcher_add_room(hearth_matcher *m, const char *name, const char *canonical)
{
	struct words ws;
	struct room *r;

	ws.n = 0;
	split(name, strlen(name), &ws); /* fillers stay: "the" is not in names */
	if (ws.n == 0 || ws.n > ROOM_WORDS)
		return HEARTH_E_INVALID;
	if (m->nrooms == m->caprooms) {
		int cap = m->caprooms ? 2 * m->caprooms : 8;

		r = hearth_realloc(m->rooms, (size_t)cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		m->rooms = r;
		m->caprooms = cap;
	}
	r = &m->rooms[m->nrooms];
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < ws.n; i++)
		memcpy(r->words[i], ws.raw[i], WORD_MAX);
	r->n = ws.n;
	if (!(r->canonical = hearth_strdup(canonical ? canonical : name)))
		return -ENOMEM;
	m->nrooms++;
	return 0;
}

void
hearth_matcher_set_room_fn(hearth_matcher *m, hearth_matcher_room_fn fn, void *ud)
{
	m->room_fn = fn;
	m->room_ud = ud;
}

int
hearth_matcher_count(const hearth_matcher *m)
{
	return m->n;
}

/* ==== Matching ==== */

struct sval {
	const char *name;
	bool num;
	double v;
	char s[SLOT_VAL_MAX];
};

struct mstate {
	const hearth_matcher *m;
	const struct words *ws;
	long steps;
	int tmpl;
	/* the path being tried */
	int lit;
	double typed; /* words covered by typed slots */
	struct sval vals[TOK_MAX];
	int nvals;
	/* the best so far */
	int best_tmpl;
	double best_score;
	int best_lit;
	struct sval best_vals[TOK_MAX];
	int best_nvals;
};

struct cont {
	const struct node *n;
	const struct cont *up;
};

static void
finish(struct mstate *s)
{
	double score = (s->lit + s->typed) / s->ws->n;

	if (s->best_tmpl >= 0 && (score < s->best_score - 1e-9 ||
	                          (fabs(score - s->best_score) <= 1e-9 && s->lit <= s->best_lit)))
		return;
	s->best_tmpl = s->tmpl;
	s->best_score = score;
	s->best_lit = s->lit;
	memcpy(s->best_vals, s->vals, (size_t)s->nvals * sizeof(s->vals[0]));
	s->best_nvals = s->nvals;
}

static void run(struct mstate *s, const struct node *n, int pos, const struct cont *k);

static void
with_value(struct mstate *s, const struct node *n, int pos, int len, double weight, bool num,
           double v, const char *str, const struct cont *k)
{
	struct sval *sv;

	if (s->nvals >= TOK_MAX)
		return;
	sv = &s->vals[s->nvals++];
	sv->name = n->slot;
	sv->num = num;
	sv->v = v;
	snprintf(sv->s, sizeof(sv->s), "%s", str ? str : "");
	s->typed += weight * len;
	run(s, n->next, pos + len, k);
	s->typed -= weight * len;
	s->nvals--;
}

/* A room said at pos over len words, then maybe "room". */
static void
room_value(struct mstate *s, const struct node *n, int pos, int len, const char *value,
           const struct cont *k)
{
	with_value(s, n, pos, len, 0.9, false, 0, value, k);
	if (pos + len < s->ws->n && !strcmp(s->ws->w[pos + len], "room"))
		with_value(s, n, pos, len + 1, 0.9, false, 0, value, k);
}

static void
match_room(struct mstate *s, const struct node *n, int pos, const struct cont *k)
{
	const struct words *ws = s->ws;

	for (int i = 0; i < s->m->nrooms; i++) {
		const struct room *r = &s->m->rooms[i];
		int j = 0;

		while (j < r->n && pos + j < ws->n && !strcmp(r->words[j], ws->raw[pos + j]))
			j++;
		if (j == r->n)
			room_value(s, n, pos, r->n, r->canonical, k);
	}
	if (s->m->room_fn) {
		char key[SLOT_VAL_MAX];

		for (int len = 1; len <= ROOM_WORDS && pos + len <= ws->n; len++) {
			size_t o = 0;

			for (int j = 0; j < len; j++) {
				int w = snprintf(key + o, sizeof(key) - o, "%s%s", j ? "_" : "",
				                 ws->raw[pos + j]);

				if (w < 0 || (size_t)w >= sizeof(key) - o)
					return;
				o += (size_t)w;
			}
			if (s->m->room_fn(s->m->room_ud, key))
				room_value(s, n, pos, len, key, k);
		}
	}
}

static bool
word_is(const struct words *ws, int pos, const char *w)
{
	return pos < ws->n && !strcmp(ws->w[pos], w);
}

static void
match_slot(struct mstate *s, const struct node *n, int pos, const struct cont *k)
{
	const struct words *ws = s->ws;
	int lens[3], nn;
	double vals[3];

	if (pos >= ws->n)
		return;
	switch (n->type) {
	case ST_STRING:
		with_value(s, n, pos, 1, 0.5, false, 0, ws->raw[pos], k);
		return;
	case ST_ROOM:
		match_room(s, n, pos, k);
		return;
	case ST_NUMBER:
	case ST_PERCENT:
	case ST_TEMPERATURE:
		break;
	}
	nn = numbers_at(ws, pos, lens, vals);
	for (int i = 0; i < nn; i++) {
		int p = pos + lens[i];
		double v = vals[i];

		if (n->type == ST_NUMBER) {
			with_value(s, n, pos, lens[i], 0.9, true, v, NULL, k);
		} else if (n->type == ST_PERCENT) {
			if (v < 0 || v > 100)
				continue;
			with_value(s, n, pos, lens[i], 0.9, true, v, NULL, k);
			if (word_is(ws, p, "percent"))
				with_value(s, n, pos, lens[i] + 1, 0.9, true, v, NULL, k);
			else if (word_is(ws, p, "per") && word_is(ws, p + 1, "cent"))
				with_value(s, n, pos, lens[i] + 2, 0.9, true, v, NULL, k);
		} else {
			int q = p;

			if (v < -40 || v > 100)
				continue;
			with_value(s, n, pos, lens[i], 0.9, true, v, NULL, k);
			if (word_is(ws, q, "degree")) {
				q++;
				with_value(s, n, pos, q - pos, 0.9, true, v, NULL, k);
			}
			if (word_is(ws, q, "celsius") || word_is(ws, q, "c") ||
			    word_is(ws, q, "centigrade"))
				with_value(s, n, pos, q + 1 - pos, 0.9, true, v, NULL, k);
		}
	}
}

static void
run(struct mstate *s, const struct node *n, int pos, const struct cont *k)
{
	while (!n) {
		if (!k) {
			if (pos == s->ws->n)
				finish(s);
			return;
		}
		n = k->n;
		k = k->up;
	}
	if (++s->steps > STEP_BUDGET)
		return;
	switch (n->kind) {
	case N_WORD:
		if (pos < s->ws->n && !strcmp(s->ws->w[pos], n->word)) {
			s->lit++;
			run(s, n->next, pos + 1, k);
			s->lit--;
		}
		return;
	case N_GROUP: {
		struct cont c = {n->next, k};

		for (int i = 0; i < n->nalts; i++)
			run(s, n->alts[i], pos, &c);
		if (n->optional)
			run(s, n->next, pos, k);
		return;
	}
	case N_SLOT:
		match_slot(s, n, pos, k);
		if (n->may_omit)
			run(s, n->next, pos, k);
		return;
	}
}

static cJSON *
slots_json(const struct mstate *s)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	for (int i = 0; i < s->best_nvals; i++) {
		const struct sval *sv = &s->best_vals[i];
		cJSON *v = sv->num ? cJSON_CreateNumber(sv->v) : cJSON_CreateString(sv->s);

		if (!v) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(o, sv->name);
		cJSON_AddItemToObject(o, sv->name, v);
	}
	return o;
}

int
hearth_matcher_match(const hearth_matcher *m, const char *text, struct hearth_match *out)
{
	struct words ws;
	struct mstate *s;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	normalize(text, strlen(text), &ws);
	if (ws.n == 0)
		return HEARTH_E_NOT_FOUND;
	s = hearth_malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s, 0, offsetof(struct mstate, vals));
	s->m = m;
	s->ws = &ws;
	s->best_tmpl = -1;
	s->best_nvals = 0;
	s->nvals = 0;
	for (int i = 0; i < m->n; i++) {
		s->tmpl = i;
		s->steps = 0;
		run(s, m->t[i].root, 0, NULL);
	}
	if (s->best_tmpl < 0) {
		rc = HEARTH_E_NOT_FOUND;
	} else if (!(out->slots = slots_json(s))) {
		rc = -ENOMEM;
	} else {
		out->intent = m->t[s->best_tmpl].intent;
		out->tag = m->t[s->best_tmpl].tag;
		out->score = s->best_score;
		out->literals = s->best_lit;
		out->template_index = s->best_tmpl;
	}
	hearth_free(s);
	return rc;
}
