/*
 * hearthctl.c - the on-device CLI: `hearthctl [--data DIR] [--json] COMMAND`.
 *
 * It asks the running hearthd through the unix socket DIR/hearthd.sock (one
 * request line out, one JSON reply line back, five seconds at most) and
 * prints the result, either as that JSON (--json) or as aligned text for a
 * person. When no daemon listens it opens the store in DIR read-only and
 * answers what the store knows (devices, episodes) itself, saying so on
 * standard error. backup, restore and health work on the store itself
 * (memory/backup.h); only restore writes to it, replacing it whole while no
 * hearthd runs. audit verify and export read the store directly too
 * (read-only, beside a running hearthd: memory/audit.h). It owns nothing
 * beyond one command's lifetime and never talks MQTT. Exit status: 0
 * success, 1 a failure (one line on standard error), 2 a usage error.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "memory/audit.h"
#include "memory/backup.h"
#include "memory/consents.h"
#include "memory/constraints.h"
#include "memory/secrets.h"
#include "memory/episodic.h"
#include "memory/store.h"
#include "platform/alloc.h"
#include "platform/crypto.h"
#include "platform/err.h"
#include "platform/id.h"
#include "platform/json.h"
#include "platform/log.h"
#include "platform/strbuf.h"
#include "recipes/recipe.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "unknown"
#endif

#define SOCK_NAME       "hearthd.sock"
#define REPLY_TIMEOUT_S 5
#define REPLY_MAX       (16u << 20)
#define LIMIT_DEFAULT   20

#ifndef HEARTH_RECIPES_DIR
#define HEARTH_RECIPES_DIR "recipes/library"
#endif

enum cmd {
	CMD_NONE,
	CMD_STATUS,
	CMD_DEVICES,
	CMD_EPISODES,
	CMD_HEALTH,
	CMD_BACKUP,
	CMD_RESTORE,
	CMD_AUDIT,
	CMD_CONSTRAINTS,
	CMD_RECIPES,
	CMD_PLAN,
	CMD_TRACE,
	CMD_HELP,
	CMD_VERSION,
	CMD_PAIR,
	CMD_UNPAIR,
	CMD_PAIRS,
	CMD_CONSENT,
};

struct ctl {
	const char *dir;
	bool json;
	enum cmd cmd;
	long limit;
	bool limit_set;
	const char *target; /* backup / restore: the backup dir; trace: the recipe */
	/* audit: "verify" or "export", export's FILE (NULL or "-": standard
	 * output), the seal key file of --audit-key */
	const char *audit_sub;
	const char *audit_file;
	const char *audit_key;
	/* constraints: "list", "load", "add" or "remove", and its argument */
	char plan_text[512]; /* plan: the words given, joined */
	const char *cons_sub;
	const char *cons_arg;
	/* recipes: "validate" and its FILE; --recipes DIR */
	const char *recipes_sub;
	const char *recipes_arg;
	const char *recipes_dir;
	/* pair / unpair: the approver's name; pair --rotate, --broker HOST:PORT */
	const char *pair_name;
	bool rotate;
	const char *broker;
	/* consent: "list", "grant" or "revoke", and the SCOPE */
	const char *consent_sub;
	const char *consent_scope;
};

/* What came of asking the daemon. */
enum call {
	CALL_OK,        /* result in hand */
	CALL_NO_DAEMON, /* nothing listens on the socket */
	CALL_FAILED,    /* the exchange broke */
	CALL_REFUSED,   /* the daemon answered an error (printed) */
};

static const struct {
	const char *name;
	enum cmd cmd;
} commands[] = {
        {"status", CMD_STATUS},   {"devices", CMD_DEVICES}, {"episodes", CMD_EPISODES},
        {"health", CMD_HEALTH},   {"backup", CMD_BACKUP},   {"restore", CMD_RESTORE},
        {"help", CMD_HELP},       {"audit", CMD_AUDIT},     {"constraints", CMD_CONSTRAINTS},
        {"recipes", CMD_RECIPES}, {"plan", CMD_PLAN},       {"pair", CMD_PAIR},
        {"unpair", CMD_UNPAIR},   {"pairs", CMD_PAIRS},     {"consent", CMD_CONSENT},
        {"trace", CMD_TRACE},
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: hearthctl [--data DIR] [--json] COMMAND [--json]\n"
	        "\n"
	        "Asks the running hearthd through DIR/" SOCK_NAME ", or reads the store in DIR\n"
	        "when no daemon runs.\n"
	        "\n"
	        "commands:\n"
	        "  status                the daemon's state: broker, devices, plans, episodes\n"
	        "  devices               known devices, their availability and state\n"
	        "  episodes [--limit N]  recent runs, newest first (default %d)\n"
	        "  health                store use (map size, used, entries per database)\n"
	        "  backup DIR            a compacted hot copy of the store into DIR (new or\n"
	        "                        empty), validated; hearthd may keep running\n"
	        "  restore DIR           validate the backup in DIR and put it in place of the\n"
	        "                        store (stop hearthd first; the old store is kept)\n"
	        "  audit verify          check the audit chain; names the first bad record\n"
	        "  audit export [FILE]   the audit records as JSON lines, oldest first, into\n"
	        "                        FILE (made 0600) or standard output\n"
	        "  constraints [list]    the hard rules in force and their policy hash\n"
	        "  constraints load FILE replace the rules with FILE's (a JSON array of rules)\n"
	        "  constraints add FILE  add or replace the rule in FILE (a JSON object)\n"
	        "  constraints remove ID remove rule ID\n"
	        "  recipes               the loaded recipes (the daemon's, else those in the\n"
	        "                        recipe folder)\n"
	        "  recipes validate FILE check a recipe file; every problem as FILE: path: what\n"
	        "  plan TEXT             preview what hearthd would do for TEXT (nothing is sent)\n"
	        "  pair NAME [--rotate] [--broker HOST:PORT]\n"
	        "                        pair the phone NAME: a new 256-bit approval key, printed\n"
	        "                        in hex on the last line, after the pairing payload the\n"
	        "                        phone app scans; --rotate replaces the key of a paired\n"
	        "                        NAME; --broker is the broker address put in the payload\n"
	        "  unpair NAME           forget the phone NAME and its key\n"
	        "  pairs                 the paired phones and when they were paired (no keys)\n"
	        "  consent [list]        standing pre-approvals and counted approvals, by scope\n"
	        "  consent grant SCOPE   the owner pre-approves SCOPE (recipe:ID[/room:ROOM]),\n"
	        "                        high risk included\n"
	        "  consent revoke SCOPE  remove SCOPE's pre-approval and its counted approvals:\n"
	        "                        the question comes back\n"
	        "  trace RECIPE [--limit N]  the last runs of RECIPE (default: trace.runs of the\n"
	        "                        daemon's configuration, %d without a daemon), each "
	        "step's\n"
	        "                        timeline in ms since the intent arrived\n"
	        "  help                  this text\n"
	        "\n"
	        "options:\n"
	        "  --data DIR  hearthd's data dir (default /var/lib/hearth for root,\n"
	        "              ./hearth-data for others)\n"
	        "  --json      print the result as one line of JSON\n"
	        "  --recipes DIR  the recipe folder for recipes without a daemon (default\n"
	        "              " HEARTH_RECIPES_DIR ")\n"
	        "  --audit-key FILE  the audit seal key (64 hex digits or 32 bytes), to\n"
	        "                    verify or export a sealed audit chain (also for\n"
	        "                    backup and restore)\n"
	        "  --version   print the version\n",
	        LIMIT_DEFAULT, LIMIT_DEFAULT);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, prefixed with the program name. */
static void
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("hearthctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ==== Arguments ==== */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: the reason, then the usage, on stderr; exit status 2. */
static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hearthctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return 2;
}

static bool
parse_limit(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1)
		return false;
	*out = v;
	return true;
}

/* The words after "audit": verify, or export [FILE]. false: not one of them. */
static bool
audit_arg(struct ctl *c, const char *a)
{
	if (!c->audit_sub && (!strcmp(a, "verify") || !strcmp(a, "export")))
		c->audit_sub = a;
	else if (c->audit_sub && !strcmp(c->audit_sub, "export") && !c->audit_file)
		c->audit_file = a;
	else
		return false;
	return true;
}

/* Fill c from argv. Returns -1 to go on, or the exit status. */
static int
parse_args(int argc, char **argv, struct ctl *c)
{
	const char *val;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			c->cmd = CMD_HELP;
			return -1;
		} else if (!strcmp(a, "--version")) {
			c->cmd = CMD_VERSION;
			return -1;
		} else if (!strcmp(a, "--data") || !strncmp(a, "--data=", 7)) {
			val = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !*val)
				return usage_error("%s needs a directory", "--data");
			c->dir = val;
		} else if (!strcmp(a, "--limit") || !strncmp(a, "--limit=", 8)) {
			val = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !parse_limit(val, &c->limit))
				return usage_error("%s needs a positive number", "--limit");
			c->limit_set = true;
		} else if (!strcmp(a, "--audit-key") || !strncmp(a, "--audit-key=", 12)) {
			val = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !*val)
				return usage_error("%s needs a key file", "--audit-key");
			c->audit_key = val;
		} else if (!strcmp(a, "--recipes") || !strncmp(a, "--recipes=", 10)) {
			val = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !*val)
				return usage_error("%s needs a directory", "--recipes");
			c->recipes_dir = val;
		} else if (!strcmp(a, "--rotate")) {
			c->rotate = true;
		} else if (!strcmp(a, "--broker") || !strncmp(a, "--broker=", 9)) {
			val = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !*val || strlen(val) > 260 || strpbrk(val, "\"\\ ") ||
			    !strchr(val, ':'))
				return usage_error("%s needs HOST:PORT", "--broker");
			c->broker = val;
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option %s", a);
		} else if (c->cmd == CMD_NONE) {
			for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
				if (!strcmp(a, commands[k].name))
					c->cmd = commands[k].cmd;
			if (c->cmd == CMD_NONE)
				return usage_error("unknown command \"%s\"", a);
		} else if ((c->cmd == CMD_BACKUP || c->cmd == CMD_RESTORE || c->cmd == CMD_TRACE) &&
		           !c->target) {
			c->target = a;
		} else if (c->cmd == CMD_AUDIT && audit_arg(c, a)) {
			continue;
		} else if (c->cmd == CMD_CONSTRAINTS && !c->cons_sub &&
		           (!strcmp(a, "list") || !strcmp(a, "load") || !strcmp(a, "add") ||
		            !strcmp(a, "remove"))) {
			c->cons_sub = a;
		} else if (c->cmd == CMD_CONSTRAINTS && c->cons_sub &&
		           strcmp(c->cons_sub, "list") && !c->cons_arg) {
			c->cons_arg = a;
		} else if (c->cmd == CMD_PLAN) {
			size_t n = strlen(c->plan_text);

			snprintf(c->plan_text + n, sizeof(c->plan_text) - n, "%s%s", n ? " " : "",
			         a);
		} else if ((c->cmd == CMD_PAIR || c->cmd == CMD_UNPAIR) && !c->pair_name) {
			c->pair_name = a;
		} else if (c->cmd == CMD_CONSENT && !c->consent_sub &&
		           (!strcmp(a, "list") || !strcmp(a, "grant") || !strcmp(a, "revoke"))) {
			c->consent_sub = a;
		} else if (c->cmd == CMD_CONSENT && c->consent_sub &&
		           strcmp(c->consent_sub, "list") && !c->consent_scope) {
			c->consent_scope = a;
		} else if (c->cmd == CMD_RECIPES && !c->recipes_sub && !strcmp(a, "validate")) {
			c->recipes_sub = a;
		} else if (c->cmd == CMD_RECIPES && c->recipes_sub && !c->recipes_arg) {
			c->recipes_arg = a;
		} else {
			return usage_error("unexpected argument \"%s\"", a);
		}
	}
	if (c->cmd == CMD_NONE)
		return usage_error("%s", "no command given");
	if ((c->cmd == CMD_BACKUP || c->cmd == CMD_RESTORE) && !c->target)
		return usage_error("%s needs the backup directory",
		                   c->cmd == CMD_BACKUP ? "backup" : "restore");
	if (c->cmd == CMD_TRACE && !c->target)
		return usage_error("%s", "trace needs a recipe id, e.g. trace scene.movie_night");
	if (c->limit_set && c->cmd != CMD_EPISODES && c->cmd != CMD_TRACE)
		return usage_error("%s only goes with episodes and trace", "--limit");
	if (c->cmd == CMD_AUDIT && !c->audit_sub)
		return usage_error("%s", "audit needs verify or export");
	if (c->cmd == CMD_CONSTRAINTS && c->cons_sub && strcmp(c->cons_sub, "list") && !c->cons_arg)
		return usage_error("constraints %s needs %s", c->cons_sub,
		                   strcmp(c->cons_sub, "remove") ? "a FILE" : "a rule ID");
	if (c->cmd == CMD_PLAN && !c->plan_text[0])
		return usage_error("%s", "plan needs the words of an intent, e.g. plan \"movie "
		                         "night in the bedroom\"");
	if (c->cmd == CMD_RECIPES && c->recipes_sub && !c->recipes_arg)
		return usage_error("%s", "recipes validate needs a FILE");
	if (c->recipes_dir && c->cmd != CMD_RECIPES)
		return usage_error("%s only goes with recipes", "--recipes");
	if ((c->cmd == CMD_PAIR || c->cmd == CMD_UNPAIR) && !c->pair_name)
		return usage_error("%s needs the phone's NAME",
		                   c->cmd == CMD_PAIR ? "pair" : "unpair");
	if (c->pair_name && !hearth_id_valid_str(c->pair_name))
		return usage_error(
		        "\"%.80s\" is not a valid name: 1-64 characters of A-Z a-z 0-9 _ . -",
		        c->pair_name);
	if (c->cmd == CMD_CONSENT && c->consent_sub && strcmp(c->consent_sub, "list") &&
	    !c->consent_scope)
		return usage_error("consent %s needs a SCOPE, e.g. recipe:door.unlock/room:hallway",
		                   c->consent_sub);
	if (c->rotate && c->cmd != CMD_PAIR)
		return usage_error("%s only goes with pair", "--rotate");
	if (c->broker && c->cmd != CMD_PAIR)
		return usage_error("%s only goes with pair", "--broker");
	if (c->audit_key && c->cmd != CMD_AUDIT && c->cmd != CMD_BACKUP && c->cmd != CMD_RESTORE)
		return usage_error("%s only goes with audit, backup and restore", "--audit-key");
	return -1;
}

/* ==== Text helpers ==== */

/* Control characters from devices must not reach the terminal. */
static void
sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Columns a UTF-8 string takes (one per code point). */
static size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Cut s to at most max columns, ending in "..." when cut. */
static void
truncate_text(char *s, size_t max)
{
	size_t n = 0;

	if (max < 4 || text_width(s) <= max)
		return;
	for (char *p = s; *p; p++) {
		if (((unsigned char)*p & 0xc0) != 0x80 && n++ == max - 3) {
			strcpy(p, "...");
			return;
		}
	}
}

/* A scalar the way a person reads it; objects and arrays as compact JSON. */
static void
sb_value(struct hearth_strbuf *b, const cJSON *v)
{
	char *txt;

	if (cJSON_IsString(v)) {
		hearth_strbuf_addf(b, "%s", v->valuestring);
	} else if (cJSON_IsBool(v)) {
		hearth_strbuf_addf(b, "%s", cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d >= -1e15 && d <= 1e15 && d == (double)(long long)d)
			hearth_strbuf_addf(b, "%lld", (long long)d);
		else
			hearth_strbuf_addf(b, "%g", d);
	} else if (!v || cJSON_IsNull(v)) {
		hearth_strbuf_addf(b, "-");
	} else {
		txt = hearth_json_print(v);
		if (txt)
			hearth_strbuf_addf(b, "%s", txt);
		else
			b->oom = true;
		hearth_free(txt);
	}
}

/* "key=value" pairs of an object, joined by sep; "-" when empty. */
static void
sb_pairs(struct hearth_strbuf *b, const cJSON *obj, const char *sep)
{
	const cJSON *it;
	bool first = true;

	cJSON_ArrayForEach(it, obj)
	{
		if (!it->string)
			continue;
		hearth_strbuf_addf(b, "%s%s=", first ? "" : sep, it->string);
		sb_value(b, it);
		first = false;
	}
	if (first)
		hearth_strbuf_addf(b, "-");
}

static void
sb_local_time(struct hearth_strbuf *b, double ms)
{
	time_t t = (time_t)(ms / 1000);
	char buf[32];
	struct tm tm;

	if (ms <= 0 || !localtime_r(&t, &tm) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm)) {
		hearth_strbuf_addf(b, "-");
		return;
	}
	hearth_strbuf_addf(b, "%s", buf);
}

static void
sb_duration(struct hearth_strbuf *b, long long s)
{
	if (s < 60)
		hearth_strbuf_addf(b, "%llds", s);
	else if (s < 3600)
		hearth_strbuf_addf(b, "%lldm %02llds", s / 60, s % 60);
	else if (s < 86400)
		hearth_strbuf_addf(b, "%lldh %02lldm", s / 3600, s % 3600 / 60);
	else
		hearth_strbuf_addf(b, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

static void
sb_size(struct hearth_strbuf *b, double bytes)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	hearth_strbuf_addf(b, bytes == (double)(long long)bytes ? "%.0f %s" : "%.1f %s", bytes,
	                   unit[u]);
}

/* ==== Tables ==== */

#define COLS_MAX 8

struct table {
	size_t ncols;
	const char *head[COLS_MAX];
	size_t max[COLS_MAX]; /* widest a cell may be; 0: no limit */
	bool right[COLS_MAX]; /* right-aligned */
	char **cells;         /* nrows x ncols, owned */
	size_t nrows;
	size_t cap;
};

/* Add a row of ncols cells built in b[]; takes them. Returns -ENOMEM. */
static int
table_add(struct table *t, struct hearth_strbuf *b)
{
	char *row[COLS_MAX];
	int err = 0;

	for (size_t c = 0; c < t->ncols; c++) {
		row[c] = hearth_strbuf_take(&b[c]);
		memset(&b[c], 0, sizeof(b[c]));
		if (!row[c])
			err = -ENOMEM;
	}
	if (!err && t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = hearth_realloc(t->cells, cap * t->ncols * sizeof(*cells));

		if (cells) {
			t->cells = cells;
			t->cap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (err) {
		for (size_t c = 0; c < t->ncols; c++)
			hearth_free(row[c]);
		return err;
	}
	for (size_t c = 0; c < t->ncols; c++) {
		sanitize(row[c]);
		if (t->max[c])
			truncate_text(row[c], t->max[c]);
		t->cells[t->nrows * t->ncols + c] = row[c];
	}
	t->nrows++;
	return 0;
}

static void
print_cell(const char *s, size_t width, bool right, bool last)
{
	size_t pad = width - text_width(s);

	if (right)
		printf("%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, stdout);
	else
		printf("%s%*s", s, (int)pad, "");
}

static void
table_print(const struct table *t)
{
	size_t width[COLS_MAX];

	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = text_width(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t c = 0; c < t->ncols; c++) {
		print_cell(t->head[c], width[c], t->right[c], c + 1 == t->ncols);
		fputs(c + 1 == t->ncols ? "\n" : "  ", stdout);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			print_cell(t->cells[r * t->ncols + c], width[c], t->right[c],
			           c + 1 == t->ncols);
			fputs(c + 1 == t->ncols ? "\n" : "  ", stdout);
		}
	}
}

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		hearth_free(t->cells[i]);
	hearth_free(t->cells);
}

/* Print the table (unless building it ran out of memory) and free it;
 * the exit status. */
static int
table_done(struct table *t, int err)
{
	if (!err)
		table_print(t);
	table_free(t);
	if (err) {
		fail("out of memory");
		return 1;
	}
	return 0;
}

/* ==== Views ==== */

static int
print_json(const cJSON *result)
{
	char *txt = hearth_json_print(result);

	if (!txt) {
		fail("out of memory");
		return 1;
	}
	puts(txt);
	hearth_free(txt);
	return 0;
}

/* status (and the store's facts): aligned "key: value" lines in reply order. */
static int
print_status(const cJSON *st)
{
	const cJSON *it;
	size_t width = 0;
	int rc = 0;

	cJSON_ArrayForEach(it, st)
	{
		if (it->string && strlen(it->string) > width)
			width = strlen(it->string);
	}
	cJSON_ArrayForEach(it, st)
	{
		struct hearth_strbuf label = {0}, val = {0};
		size_t n;
		char *l, *v;

		if (!it->string)
			continue;
		n = strlen(it->string);
		if (n > 2 && !strcmp(it->string + n - 2, "_s") && cJSON_IsNumber(it)) {
			hearth_strbuf_addf(&label, "%.*s", (int)(n - 2), it->string);
			sb_duration(&val, (long long)it->valuedouble);
		} else if (n > 6 && !strcmp(it->string + n - 6, "_bytes") && cJSON_IsNumber(it)) {
			hearth_strbuf_addf(&label, "%.*s", (int)(n - 6), it->string);
			sb_size(&val, it->valuedouble);
		} else if (n > 3 && !strcmp(it->string + n - 3, "_at") && cJSON_IsNumber(it)) {
			hearth_strbuf_addf(&label, "%s", it->string);
			sb_local_time(&val, it->valuedouble);
		} else {
			hearth_strbuf_addf(&label, "%s", it->string);
			if (cJSON_IsBool(it))
				hearth_strbuf_addf(&val, "%s", cJSON_IsTrue(it) ? "yes" : "no");
			else
				sb_value(&val, it);
		}
		l = hearth_strbuf_take(&label);
		v = hearth_strbuf_take(&val);
		if (l && v) {
			for (char *p = l; *p; p++)
				if (*p == '_')
					*p = ' ';
			sanitize(l);
			sanitize(v);
			printf("%s:%*s %s\n", l, (int)(width - strlen(l)), "", v);
		} else {
			rc = -ENOMEM;
		}
		hearth_free(l);
		hearth_free(v);
	}
	if (rc) {
		fail("out of memory");
		return 1;
	}
	return 0;
}

static const char *
str_or(const cJSON *obj, const char *key, const char *dflt)
{
	const char *s;

	if (!cJSON_IsObject(obj) || hearth_json_get_str(obj, key, &s) != 0)
		return dflt;
	return s;
}

static int
print_devices(const cJSON *arr)
{
	struct table t = {
	        .ncols = 7,
	        .head = {"ID", "NAME", "ROOM", "KIND", "AVAIL", "STATE", "CAPABILITIES"},
	        .max = {32, 24, 16, 16, 0, 40, 0},
	};
	const cJSON *d, *it;
	int err = 0;

	if (cJSON_GetArraySize(arr) == 0) {
		puts("no devices known yet");
		return 0;
	}
	cJSON_ArrayForEach(d, arr)
	{
		struct hearth_strbuf b[7] = {{0}};
		const cJSON *online = cJSON_GetObjectItemCaseSensitive(d, "online");
		bool first = true;

		if (!cJSON_IsObject(d))
			continue;
		hearth_strbuf_addf(&b[0], "%s", str_or(d, "id", "?"));
		hearth_strbuf_addf(&b[1], "%s", str_or(d, "name", "-"));
		hearth_strbuf_addf(&b[2], "%s", str_or(d, "room", "-"));
		hearth_strbuf_addf(&b[3], "%s", str_or(d, "kind", "-"));
		hearth_strbuf_addf(&b[4], "%s",
		                   cJSON_IsTrue(online)    ? "online"
		                   : cJSON_IsFalse(online) ? "offline"
		                                           : "?");
		sb_pairs(&b[5], hearth_json_obj(d, "state"), " ");
		cJSON_ArrayForEach(it, hearth_json_arr(d, "capabilities"))
		{
			if (cJSON_IsString(it)) {
				hearth_strbuf_addf(&b[6], "%s%s", first ? "" : ",",
				                   it->valuestring);
				first = false;
			}
		}
		if (first)
			hearth_strbuf_addf(&b[6], "-");
		err = table_add(&t, b);
		if (err)
			break;
	}
	return table_done(&t, err);
}

/* "3 (2 confirmed, 1 failed)": step count, then counts per state in first-seen order. */
static void
sb_steps(struct hearth_strbuf *b, const cJSON *steps)
{
	const char *state[16];
	int count[16], nstates = 0, total = 0;
	const cJSON *s;

	cJSON_ArrayForEach(s, steps)
	{
		const char *st = str_or(s, "state", "unknown");
		int i;

		total++;
		for (i = 0; i < nstates && strcmp(state[i], st); i++)
			;
		if (i == nstates && nstates < 16) {
			state[nstates] = st;
			count[nstates++] = 0;
		}
		if (i < nstates)
			count[i]++;
	}
	hearth_strbuf_addf(b, "%d", total);
	for (int i = 0; i < nstates; i++)
		hearth_strbuf_addf(b, "%s%d %s", i ? ", " : " (", count[i], state[i]);
	if (nstates)
		hearth_strbuf_addf(b, ")");
}

static int
print_episodes(const cJSON *arr)
{
	struct table t = {
	        .ncols = 6,
	        .head = {"WHEN", "OUTCOME", "INTENT", "SLOTS", "STEPS", "TOTAL"},
	        .max = {0, 16, 32, 32, 0, 0},
	        .right = {false, false, false, false, false, true},
	};
	const cJSON *e;
	int err = 0;

	if (cJSON_GetArraySize(arr) == 0) {
		puts("no episodes yet");
		return 0;
	}
	cJSON_ArrayForEach(e, arr)
	{
		struct hearth_strbuf b[6] = {{0}};
		const char *intent = str_or(e, "intent", str_or(e, "recipe", "-"));
		const cJSON *lat = hearth_json_obj(e, "latency_ms");
		double ts = 0, total;

		if (!cJSON_IsObject(e))
			continue;
		hearth_json_get_num(e, "ts", &ts);
		sb_local_time(&b[0], ts);
		hearth_strbuf_addf(&b[1], "%s", str_or(e, "outcome", "-"));
		hearth_strbuf_addf(&b[2], "%s", intent);
		sb_pairs(&b[3], hearth_json_obj(e, "slots"), ",");
		sb_steps(&b[4], hearth_json_arr(e, "steps"));
		if (lat && hearth_json_get_num(lat, "total", &total) == 0)
			hearth_strbuf_addf(&b[5], "%.0f ms", total);
		else
			hearth_strbuf_addf(&b[5], "-");
		err = table_add(&t, b);
		if (err)
			break;
	}
	return table_done(&t, err);
}

/* One step's timeline as "dispatched 0, confirmed 48". */
static void
sb_timeline(struct hearth_strbuf *b, const cJSON *tl)
{
	static const char *const order[] = {"dispatched", "sent",    "confirmed",
	                                    "failed",     "rebound", "compensated"};
	int n = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		double v;

		if (hearth_json_get_num(tl, order[i], &v) == 0)
			hearth_strbuf_addf(b, "%s%s %.0f", n++ ? ", " : "", order[i], v);
	}
	if (!n)
		hearth_strbuf_addf(b, "-");
}

/* trace: one block per run, newest first; each step a row of its timeline. */
static int
print_trace(const struct ctl *c, const cJSON *arr)
{
	const cJSON *run;
	int err = 0;

	if (cJSON_GetArraySize(arr) == 0) {
		printf("no runs of %s in the episodes\n", c->target);
		return 0;
	}
	cJSON_ArrayForEach(run, arr)
	{
		struct table t = {
		        .ncols = 4,
		        .head = {"STEP", "DEVICE", "STATE", "TIMELINE (ms since the intent)"},
		        .max = {32, 32, 16, 0},
		};
		struct hearth_strbuf h = {0};
		const cJSON *lat = hearth_json_obj(run, "latency_ms"), *st;
		double ts = 0, total;

		hearth_json_get_num(run, "ts", &ts);
		sb_local_time(&h, ts);
		hearth_strbuf_addf(&h, "  %s  %s", str_or(run, "plan_id", "-"),
		                   str_or(run, "outcome", "-"));
		if (hearth_json_obj(run, "slots") && hearth_json_obj(run, "slots")->child) {
			hearth_strbuf_addf(&h, "  ");
			sb_pairs(&h, hearth_json_obj(run, "slots"), ",");
		}
		if (lat && hearth_json_get_num(lat, "total", &total) == 0)
			hearth_strbuf_addf(&h, "  total %.0f ms", total);
		if (h.buf) {
			sanitize(h.buf);
			printf("%s%s\n", run == arr->child ? "" : "\n", h.buf);
			if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(run, "reason"))) {
				char *r = hearth_strdup(str_or(run, "reason", ""));

				if (r) {
					sanitize(r);
					printf("reason: %s\n", r);
					hearth_free(r);
				}
			}
		}
		hearth_strbuf_free(&h);
		cJSON_ArrayForEach(st, hearth_json_arr(run, "steps"))
		{
			struct hearth_strbuf b[4] = {{0}};

			hearth_strbuf_addf(&b[0], "%s", str_or(st, "id", "-"));
			hearth_strbuf_addf(&b[1], "%s", str_or(st, "device", "-"));
			hearth_strbuf_addf(&b[2], "%s", str_or(st, "state", "-"));
			sb_timeline(&b[3], hearth_json_obj(st, "timeline"));
			if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(st, "rebound_to")))
				hearth_strbuf_addf(&b[3], " (then %s)",
				                   str_or(st, "rebound_to", ""));
			err = table_add(&t, b);
			if (err)
				break;
		}
		err = table_done(&t, err);
		if (err)
			break;
	}
	return err;
}

/* Print a result of the daemon or of the store. Returns the exit status. */
static int
show(const struct ctl *c, const cJSON *result)
{
	bool want_array = c->cmd == CMD_DEVICES || c->cmd == CMD_EPISODES || c->cmd == CMD_TRACE;

	if (want_array ? !cJSON_IsArray(result) : !cJSON_IsObject(result)) {
		fail("unexpected reply from hearthd: the result is %s, not an %s",
		     hearth_json_type_name(result), want_array ? "array" : "object");
		return 1;
	}
	if (c->json)
		return print_json(result);
	switch (c->cmd) {
	case CMD_STATUS:
		return print_status(result);
	case CMD_DEVICES:
		return print_devices(result);
	case CMD_EPISODES:
		return print_episodes(result);
	case CMD_TRACE:
		return print_trace(c, result);
	default:
		return 1;
	}
}

/* ==== Talking to hearthd ==== */

static int
send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one reply line (or up to EOF) into a new buffer; the caller frees it. */
static int
recv_line(int fd, char **out, size_t *out_len)
{
	size_t len = 0, cap = 4096;
	char *buf = hearth_malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *p = cap >= REPLY_MAX ? NULL : hearth_realloc(buf, cap * 2);

			if (!p) {
				hearth_free(buf);
				return cap >= REPLY_MAX ? HEARTH_E_TOO_LARGE : -ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;

			hearth_free(buf);
			return err;
		}
		if (n == 0)
			break;
		if (memchr(buf + len, '\n', (size_t)n)) {
			len += (size_t)n;
			len = (size_t)((char *)memchr(buf, '\n', len) - buf);
			break;
		}
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* Take the reply apart: {"ok":true,"result":...} or {"ok":false,"error":"..."}. */
static enum call
take_reply(const char *buf, size_t len, cJSON **result)
{
	const char *error;
	cJSON *reply;
	char why[128];
	bool ok;
	int err;

	if (!len) {
		fail("hearthd closed the connection without an answer");
		return CALL_FAILED;
	}
	err = hearth_json_parse(buf, len, &reply, why, sizeof(why));
	if (err) {
		fail("unreadable reply from hearthd: %s", err == -ENOMEM ? "out of memory" : why);
		return CALL_FAILED;
	}
	if (hearth_json_get_bool(reply, "ok", &ok) != 0) {
		fail("unexpected reply from hearthd (no \"ok\")");
		cJSON_Delete(reply);
		return CALL_FAILED;
	}
	if (!ok) {
		if (hearth_json_get_str(reply, "error", &error) != 0)
			error = "hearthd refused the request without saying why";
		fail("%s", error);
		cJSON_Delete(reply);
		return CALL_REFUSED;
	}
	*result = cJSON_DetachItemFromObjectCaseSensitive(reply, "result");
	cJSON_Delete(reply);
	if (!*result)
		*result = cJSON_CreateNull();
	if (!*result) {
		fail("out of memory");
		return CALL_FAILED;
	}
	return CALL_OK;
}

/*
 * Send one request line to hearthd in dir and wait for its reply. On
 * CALL_OK, *result is the reply's result (the caller deletes it); on
 * CALL_FAILED the reason has been printed.
 */
static enum call
daemon_call(const char *dir, const cJSON *req, cJSON **result)
{
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	enum call ret = CALL_FAILED;
	char *line = NULL, *reply = NULL;
	size_t len;
	int fd, err, n;

	*result = NULL;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, SOCK_NAME);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fail("the socket path %s/%s is too long (at most %zu bytes): use a shorter --data",
		     dir, SOCK_NAME, sizeof(sa.sun_path) - 1);
		return CALL_FAILED;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail("cannot make a socket: %s", strerror(errno));
		return CALL_FAILED;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		fail("cannot set a timeout on the socket: %s", strerror(errno));
		goto close_fd;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
			ret = CALL_NO_DAEMON;
		else if (errno == EACCES || errno == EPERM)
			fail("cannot reach hearthd at %s: %s (run hearthctl as the user hearthd "
			     "runs as)",
			     sa.sun_path, strerror(errno));
		else
			fail("cannot reach hearthd at %s: %s", sa.sun_path, strerror(errno));
		goto close_fd;
	}

	line = hearth_json_print(req);
	if (!line) {
		fail("out of memory");
		goto close_fd;
	}
	len = strlen(line);
	err = send_all(fd, line, len);
	if (!err)
		err = send_all(fd, "\n", 1);
	if (!err)
		err = recv_line(fd, &reply, &len);
	if (err == -ETIMEDOUT)
		fail("hearthd at %s did not answer within %d s", sa.sun_path, REPLY_TIMEOUT_S);
	else if (err == HEARTH_E_TOO_LARGE)
		fail("the reply of hearthd is larger than %u MiB", REPLY_MAX >> 20);
	else if (err)
		fail("talking to hearthd at %s: %s", sa.sun_path, hearth_strerror(err));
	else
		ret = take_reply(reply, len, result);
	hearth_free(reply);
	hearth_free(line);
close_fd:
	close(fd);
	return ret;
}

/* ==== Reading the store ==== */

struct collect {
	cJSON *arr;
	long limit; /* records wanted; 0: all */
	long count;
	long skipped;
};

static int
collect_record(void *ud, const char *key, const char *json, size_t len)
{
	struct collect *c = ud;
	cJSON *rec;
	int err = hearth_json_parse(json, len, &rec, NULL, 0);

	if (err == -ENOMEM)
		return err;
	if (err) {
		c->skipped++;
		return 0;
	}
	cJSON_AddItemToArray(c->arr, rec);
	/* Count readable records only, so a bad one does not shorten the list. */
	return c->limit > 0 && ++c->count >= c->limit;
}

static int
open_store(const char *dir, hearth_store **st)
{
	struct hearth_store_opts o = {.dir = dir, .read_only = true};
	char why[512];
	int err = hearth_store_open(&o, st, why, sizeof(why));

	if (err == HEARTH_E_NOT_FOUND)
		fail("hearthd is not running and there is no store in %s: pass --data with the "
		     "data "
		     "dir hearthd uses",
		     dir);
	else if (err == -EACCES || err == -EPERM)
		fail("hearthd is not running and the store cannot be read: %s (run hearthctl as "
		     "the "
		     "user hearthd runs as)",
		     why);
	else if (err)
		fail("hearthd is not running and the store cannot be read: %s", why);
	return err;
}

/* status without a daemon: what the store knows, and exit status 1. */
static int
store_status(const struct ctl *c, hearth_store *st)
{
	struct hearth_store_info info;
	cJSON *o = cJSON_CreateObject();
	int err = hearth_store_info(st, &info), rc;

	if (err || !o) {
		fail("cannot read the store in %s: %s", c->dir,
		     hearth_strerror(err ? err : -ENOMEM));
		cJSON_Delete(o);
		return 1;
	}
	if (!cJSON_AddStringToObject(o, "state", "offline") ||
	    !cJSON_AddStringToObject(o, "home", info.home_id) ||
	    !cJSON_AddNumberToObject(o, "schema", info.schema_version) ||
	    !cJSON_AddNumberToObject(o, "episodes", (double)info.episodes) ||
	    !cJSON_AddNumberToObject(o, "devices", (double)info.devices) ||
	    !cJSON_AddNumberToObject(o, "created_at", (double)info.created_at) ||
	    !cJSON_AddNumberToObject(o, "store_used_bytes", (double)info.map_used) ||
	    !cJSON_AddNumberToObject(o, "store_size_bytes", (double)info.map_size) ||
	    !cJSON_AddStringToObject(o, "data_dir", c->dir)) {
		fail("out of memory");
		cJSON_Delete(o);
		return 1;
	}
	rc = show(c, o);
	cJSON_Delete(o);
	fflush(stdout);
	fail("hearthd is not running (no socket at %s/%s)", c->dir, SOCK_NAME);
	return rc ? rc : 1;
}

static int
from_store(const struct ctl *c)
{
	struct collect col = {.limit = c->cmd == CMD_EPISODES ? c->limit : 0};
	hearth_store *st;
	int err, rc = 1;

	if (open_store(c->dir, &st))
		return 1;
	if (c->cmd == CMD_STATUS) {
		rc = store_status(c, st);
		goto close_store;
	}
	fail("hearthd is not running; reading the store in %s", c->dir);
	col.arr = cJSON_CreateArray();
	if (!col.arr) {
		fail("out of memory");
		goto close_store;
	}
	if (c->cmd == CMD_TRACE) {
		cJSON *runs = NULL;
		long n = hearth_episodes_trace(st, c->target, c->limit, &runs);

		if (n < 0) {
			fail("cannot read the store in %s: %s", c->dir, hearth_strerror((int)n));
		} else {
			rc = show(c, runs);
			cJSON_Delete(runs);
		}
		goto free_arr;
	}
	if (c->cmd == CMD_EPISODES)
		err = hearth_store_episodes_each(st, 0, collect_record, &col);
	else
		err = hearth_store_devices_each(st, collect_record, &col);
	if (err) {
		fail("cannot read the store in %s: %s", c->dir, hearth_strerror(err));
		goto free_arr;
	}
	if (col.skipped)
		fail("skipped %ld unreadable record(s)", col.skipped);
	rc = show(c, col.arr);
free_arr:
	cJSON_Delete(col.arr);
close_store:
	hearth_store_close(st);
	return rc;
}

/* ==== Backup, restore and health ==== */

/* What a backup holds and what was checked, as JSON; NULL when out of memory. */
static cJSON *
backup_json(const struct hearth_backup_report *r)
{
	cJSON *o = cJSON_CreateObject(), *dbs = cJSON_CreateObject();
	bool ok = o && dbs;

	for (int i = 0; ok && i < r->ndbs; i++)
		if (r->dbs[i].present)
			ok = cJSON_AddNumberToObject(dbs, r->dbs[i].name,
			                             (double)r->dbs[i].entries);
	ok = ok && cJSON_AddNumberToObject(o, "schema", r->schema_version) &&
	     cJSON_AddStringToObject(o, "home", r->home_id) &&
	     cJSON_AddNumberToObject(o, "created_at", (double)r->created_at) &&
	     (!r->backup_at || cJSON_AddNumberToObject(o, "backup_at", (double)r->backup_at)) &&
	     cJSON_AddNumberToObject(o, "bytes", (double)r->bytes) &&
	     cJSON_AddStringToObject(o, "sha256", r->sha256) &&
	     cJSON_AddBoolToObject(o, "checksum_verified", r->manifest) &&
	     cJSON_AddNumberToObject(o, "entries", (double)r->entries) &&
	     cJSON_AddNumberToObject(o, "episodes", (double)r->episodes) &&
	     cJSON_AddNumberToObject(o, "devices", (double)r->devices) &&
	     cJSON_AddNumberToObject(o, "journal", (double)r->journal) &&
	     cJSON_AddBoolToObject(o, "audit_verified", r->audit_checked) &&
	     cJSON_AddNumberToObject(o, "audit_records", (double)r->audit_records);
	if (!ok || !cJSON_AddItemToObject(o, "databases", dbs)) {
		cJSON_Delete(o);
		cJSON_Delete(dbs);
		return NULL;
	}
	return o;
}

/* Print o (JSON) with a string member added; the exit status. Deletes o. */
static int
print_json_with(cJSON *o, const char *key, const char *val, const char *key2, const char *val2)
{
	int rc;

	if (!o || !cJSON_AddStringToObject(o, key, val) ||
	    !(val2 ? cJSON_AddStringToObject(o, key2, val2) : cJSON_AddNullToObject(o, key2))) {
		cJSON_Delete(o);
		fail("out of memory");
		return 1;
	}
	rc = print_json(o);
	cJSON_Delete(o);
	return rc;
}

/* Print the text built in b as one line; the exit status. */
static int
put_line(struct hearth_strbuf *b)
{
	char *line = hearth_strbuf_take(b);

	memset(b, 0, sizeof(*b));
	if (!line) {
		fail("out of memory");
		return 1;
	}
	puts(line);
	hearth_free(line);
	return 0;
}

/* The seal key of --audit-key into key; *out is key, or NULL without the option. */
static int
backup_key(const struct ctl *c, uint8_t key[HEARTH_AUDIT_KEY_LEN], const uint8_t **out)
{
	char why[512];

	*out = NULL;
	if (!c->audit_key)
		return 0;
	if (hearth_audit_load_key(c->audit_key, key, why, sizeof(why))) {
		fail("%s", why);
		return 1;
	}
	*out = key;
	return 0;
}

/* The reason a backup or restore failed, with what to do about a sealed chain. */
static void
fail_backup(const char *what, int err, const char *why)
{
	if (err == HEARTH_E_CONFIG && strstr(why, "audit chain"))
		fail("%s: %s: pass its key file with --audit-key FILE", what, why);
	else
		fail("%s: %s", what, why);
}

static int
cmd_backup(const struct ctl *c)
{
	struct hearth_backup_report r;
	uint8_t key[HEARTH_AUDIT_KEY_LEN];
	struct hearth_strbuf b = {0};
	const uint8_t *k;
	char why[1024];
	int err;

	if (!c->json) {
		printf("backing up %s to %s ...\n", c->dir, c->target);
		fflush(stdout);
	}
	if (backup_key(c, key, &k))
		return 1;
	err = hearth_backup_make(c->dir, c->target, k, &r, why, sizeof(why));
	memset(key, 0, sizeof(key));
	if (err) {
		fail_backup("backup failed", err, why);
		return 1;
	}
	if (c->json)
		return print_json_with(backup_json(&r), "backup", c->target, "data_dir", c->dir);
	hearth_strbuf_addf(&b, "backup %s: ", c->target);
	sb_size(&b, (double)r.bytes);
	hearth_strbuf_addf(&b, ", schema %d, %ld episode%s, ", r.schema_version, r.episodes,
	                   r.episodes == 1 ? "" : "s");
	if (r.audit_checked)
		hearth_strbuf_addf(&b, "audit chain verifies (%llu record%s)",
		                   (unsigned long long)r.audit_records,
		                   r.audit_records == 1 ? "" : "s");
	else
		hearth_strbuf_addf(&b, "no audit chain (schema %d)", r.schema_version);
	return put_line(&b);
}

/* The checks a restore made, one line each. */
static int
print_restore_checks(const struct hearth_backup_report *r)
{
	struct hearth_strbuf b = {0};
	int rc;

	hearth_strbuf_addf(&b, "  data     ");
	sb_size(&b, (double)r->bytes);
	if (r->manifest) {
		hearth_strbuf_addf(&b, ", SHA-256 matches backup.json (backup made ");
		sb_local_time(&b, (double)r->backup_at);
		hearth_strbuf_addf(&b, ")");
	} else {
		hearth_strbuf_addf(&b, ", no backup.json: no checksum to compare");
	}
	rc = put_line(&b);
	hearth_strbuf_addf(&b, "  schema   %d", r->schema_version);
	if (r->schema_version < HEARTH_SCHEMA_VERSION)
		hearth_strbuf_addf(&b, " (hearthd migrates it to %d when it starts)",
		                   HEARTH_SCHEMA_VERSION);
	hearth_strbuf_addf(&b, ", home \"%s\", store created ", r->home_id);
	sb_local_time(&b, (double)r->created_at);
	rc |= put_line(&b);
	hearth_strbuf_addf(
	        &b,
	        "  records  every database read to its end (%ld entries); %ld episodes, %ld "
	        "devices, %ld journal entries are valid JSON",
	        r->entries, r->episodes, r->devices, r->journal);
	rc |= put_line(&b);
	if (r->audit_checked)
		hearth_strbuf_addf(&b, "  audit    the chain verifies (%llu records)",
		                   (unsigned long long)r->audit_records);
	else
		hearth_strbuf_addf(&b, "  audit    none in schema %d", r->schema_version);
	rc |= put_line(&b);
	return rc;
}

static int
cmd_restore(const struct ctl *c)
{
	struct hearth_restore_report *r = hearth_calloc(1, sizeof(*r));
	uint8_t key[HEARTH_AUDIT_KEY_LEN];
	char why[1024], what[512];
	const uint8_t *k;
	int err, rc;

	if (!r) {
		fail("out of memory");
		return 1;
	}
	if (!c->json) {
		printf("checking backup %s before restoring it into %s ...\n", c->target, c->dir);
		fflush(stdout);
	}
	if (backup_key(c, key, &k)) {
		hearth_free(r);
		return 1;
	}
	err = hearth_backup_restore(c->target, c->dir, k, r, why, sizeof(why));
	memset(key, 0, sizeof(key));
	if (err) {
		snprintf(what, sizeof(what), "cannot restore %s", c->target);
		fail_backup(what, err, why);
		hearth_free(r);
		return 1;
	}
	if (c->json) {
		rc = print_json_with(backup_json(&r->backup), "data_dir", c->dir, "kept",
		                     r->kept[0] ? r->kept : NULL);
		hearth_free(r);
		return rc;
	}
	rc = print_restore_checks(&r->backup);
	printf("restored %s into %s\n", c->target, c->dir);
	if (r->kept[0])
		printf("the previous store is kept as %s\n", r->kept);
	else
		printf("there was no store in %s before\n", c->dir);
	hearth_free(r);
	return rc;
}

/* Reference item under key in flat (for print_status); false when out of memory. */
static bool
flat_ref(cJSON *flat, const char *key, const cJSON *item)
{
	return cJSON_AddItemReferenceToObject(flat, key, (cJSON *)item);
}

/*
 * health as text: the scalars as "key: value" lines (the store's facts
 * among them), then the databases and their entries as a table. The shape
 * is hearthd's (runtime/hub.c ctl_health), which health_from_store copies.
 */
static int
print_health(const cJSON *h)
{
	struct table t = {
	        .ncols = 2,
	        .head = {"DATABASE", "ENTRIES"},
	        .right = {false, true},
	};
	const cJSON *it, *store = hearth_json_obj(h, "store");
	const cJSON *dbs = cJSON_GetObjectItemCaseSensitive(h, "databases");
	cJSON *flat = cJSON_CreateObject(), *used = NULL;
	struct hearth_strbuf b = {0};
	double size = 0, in_use = 0, ms;
	bool ok = flat != NULL;
	int err = 0, rc;

	cJSON_ArrayForEach(it, h)
	{
		if (ok && it->string && it != store && it != dbs)
			ok = flat_ref(flat, it->string, it);
	}
	if (ok && store) {
		hearth_json_get_num(store, "map_size", &size);
		hearth_json_get_num(store, "map_used", &in_use);
		sb_size(&b, in_use);
		hearth_strbuf_addf(&b, " of ");
		sb_size(&b, size);
		hearth_strbuf_addf(&b, " (%.2f %%)", size > 0 ? 100 * in_use / size : 0.0);
		used = cJSON_CreateString(b.buf ? b.buf : "");
		hearth_free(b.buf);
		ok = !b.oom && used && cJSON_AddItemToObject(flat, "store_used", used);
		if (!ok)
			cJSON_Delete(used);
		cJSON_ArrayForEach(it, store)
		{
			if (!ok || !it->string)
				continue;
			if (!strcmp(it->string, "dir"))
				ok = flat_ref(flat, "store", it);
			else if (!strcmp(it->string, "schema_version"))
				ok = flat_ref(flat, "schema", it);
			else if (!strcmp(it->string, "synced"))
				ok = flat_ref(flat, "store_synced", it);
			else if (!strcmp(it->string, "last_maintenance") &&
			         hearth_json_get_num(store, "last_maintenance", &ms) == 0)
				ok = ms <= 0 || flat_ref(flat, "last_maintenance_at", it);
			else if (strncmp(it->string, "map_", 4))
				ok = flat_ref(flat, it->string, it);
		}
	}
	rc = ok ? print_status(flat) : 1;
	cJSON_Delete(flat);
	if (!ok) {
		fail("out of memory");
		return 1;
	}
	if (rc || (!cJSON_IsArray(dbs) && !cJSON_IsObject(dbs)))
		return rc;
	/* [{"name":..,"entries":..}] (hearthd), or {"name":entries}. */
	cJSON_ArrayForEach(it, dbs)
	{
		struct hearth_strbuf row[2] = {{0}};

		hearth_strbuf_addf(&row[0], "%s",
		                   it->string ? it->string : str_or(it, "name", "?"));
		sb_value(&row[1],
		         it->string ? it : cJSON_GetObjectItemCaseSensitive(it, "entries"));
		err = table_add(&t, row);
		if (err)
			break;
	}
	if (!err) {
		putchar('\n');
		table_print(&t);
	}
	table_free(&t);
	if (err) {
		fail("out of memory");
		return 1;
	}
	return 0;
}

static int
show_health(const struct ctl *c, const cJSON *h)
{
	return c->json ? print_json(h) : print_health(h);
}

/* health from the store itself, in hearthd's shape with "source":"store". */
static int
health_from_store(const struct ctl *c)
{
	struct hearth_store_opts o = {.dir = c->dir, .read_only = true};
	struct hearth_backup_db dbs[HEARTH_BACKUP_DBS_MAX];
	struct hearth_store_info info;
	cJSON *h = NULL, *s, *arr, *d;
	hearth_store *st;
	char why[512];
	int n, rc = 1;

	if (hearth_store_open(&o, &st, why, sizeof(why))) {
		fail("cannot read the store: %s", why);
		return 1;
	}
	n = hearth_store_info(st, &info);
	if (!n)
		n = hearth_backup_db_entries(st, dbs, HEARTH_BACKUP_DBS_MAX);
	if (n < 0) {
		fail("cannot read the store in %s: %s", c->dir, hearth_strerror(n));
		goto close_store;
	}
	h = cJSON_CreateObject();
	if (!h || !cJSON_AddStringToObject(h, "source", "store") ||
	    !cJSON_AddStringToObject(h, "home", info.home_id) ||
	    !(s = cJSON_AddObjectToObject(h, "store")) ||
	    !cJSON_AddStringToObject(s, "dir", c->dir) ||
	    !cJSON_AddNumberToObject(s, "schema_version", info.schema_version) ||
	    !cJSON_AddNumberToObject(s, "map_size", (double)info.map_size) ||
	    !cJSON_AddNumberToObject(s, "map_used", (double)info.map_used) ||
	    !cJSON_AddNumberToObject(s, "map_use_pct",
	                             info.map_size ? (double)(info.map_used * 100 / info.map_size)
	                                           : 0) ||
	    !(arr = cJSON_AddArrayToObject(h, "databases")))
		goto no_mem;
	for (int i = 0; i < n; i++) {
		d = cJSON_CreateObject();
		if (!d || !cJSON_AddStringToObject(d, "name", dbs[i].name) ||
		    !cJSON_AddNumberToObject(d, "entries",
		                             dbs[i].present ? (double)dbs[i].entries : 0) ||
		    !cJSON_AddItemToArray(arr, d)) {
			cJSON_Delete(d);
			goto no_mem;
		}
	}
	rc = show_health(c, h);
	goto free_h;
no_mem:
	fail("out of memory");
free_h:
	cJSON_Delete(h);
close_store:
	hearth_store_close(st);
	return rc;
}

/*
 * health: the daemon's view when it runs; the store's when it does not
 * (exit 1: hearthd is down) or answers an error (an older hearthd).
 */
static int
cmd_health(const struct ctl *c)
{
	cJSON *req = cJSON_CreateObject(), *result = NULL;
	int rc;

	if (!req || !cJSON_AddStringToObject(req, "cmd", "health")) {
		cJSON_Delete(req);
		fail("out of memory");
		return 1;
	}
	switch (daemon_call(c->dir, req, &result)) {
	case CALL_OK:
		if (cJSON_IsObject(result)) {
			rc = show_health(c, result);
			break;
		}
		fail("unexpected reply from hearthd: the health result is %s, not an object",
		     hearth_json_type_name(result));
		rc = 1;
		break;
	case CALL_REFUSED:
		fail("showing what the store in %s says instead", c->dir);
		rc = health_from_store(c);
		break;
	case CALL_NO_DAEMON:
		rc = health_from_store(c);
		fflush(stdout);
		fail("hearthd is not running (no socket at %s/%s)", c->dir, SOCK_NAME);
		rc = 1;
		break;
	default:
		fail("showing what the store in %s says instead", c->dir);
		health_from_store(c);
		rc = 1;
		break;
	}
	cJSON_Delete(result);
	cJSON_Delete(req);
	return rc;
}

/* backup, restore and health, which main() hands over whole; -1 for the others. */
static int
backup_command(const struct ctl *c)
{
	switch (c->cmd) {
	case CMD_BACKUP:
		return cmd_backup(c);
	case CMD_RESTORE:
		return cmd_restore(c);
	case CMD_HEALTH:
		return cmd_health(c);
	default:
		return -1;
	}
}

/* ==== Audit ==== */

/* The store, read-only, with the seal key of --audit-key; NULL after saying why. */
static hearth_store *
audit_open(const struct ctl *c)
{
	struct hearth_store_opts o = {.dir = c->dir, .read_only = true};
	uint8_t key[HEARTH_AUDIT_KEY_LEN];
	hearth_store *st;
	char why[512];
	int err;

	if (c->audit_key) {
		err = hearth_audit_load_key(c->audit_key, key, why, sizeof(why));
		if (err) {
			fail("%s", why);
			return NULL;
		}
	}
	err = hearth_store_open(&o, &st, why, sizeof(why));
	if (err == -EACCES || err == -EPERM)
		fail("cannot read the audit chain: %s (run hearthctl as the user hearthd runs as)",
		     why);
	else if (err)
		fail("cannot read the audit chain: %s", why);
	if (!err && c->audit_key && hearth_audit_set_seal_key(st, key) != 0) {
		fail("cannot use the audit seal key of %s", c->audit_key);
		hearth_store_close(st);
		st = NULL;
	}
	memset(key, 0, sizeof(key));
	return err ? NULL : st;
}

static void
audit_close(hearth_store *st)
{
	hearth_audit_forget(st);
	hearth_store_close(st);
}

static int
audit_verify_json(const struct hearth_audit_report *r)
{
	cJSON *o = cJSON_CreateObject();
	int rc;

	if (!o || !cJSON_AddBoolToObject(o, "ok", r->bad_seq == 0) ||
	    !cJSON_AddNumberToObject(o, "records", (double)r->records) ||
	    !cJSON_AddNumberToObject(o, "first_seq", (double)r->first_seq) ||
	    !cJSON_AddNumberToObject(o, "last_seq", (double)r->last_seq) ||
	    !cJSON_AddNumberToObject(o, "pruned_upto", (double)r->pruned_upto) ||
	    !cJSON_AddNumberToObject(o, "sealed", (double)r->sealed) ||
	    (r->bad_seq && (!cJSON_AddNumberToObject(o, "bad_seq", (double)r->bad_seq) ||
	                    !cJSON_AddStringToObject(o, "why", r->why)))) {
		cJSON_Delete(o);
		fail("out of memory");
		return 1;
	}
	rc = print_json(o);
	cJSON_Delete(o);
	return rc;
}

static int
audit_verify(const struct ctl *c, hearth_store *st)
{
	struct hearth_audit_report r;
	const char *why;
	char lead[40];
	int err = hearth_audit_verify(st, &r);

	if (err == HEARTH_E_CONFIG) {
		fail("%s: pass its key file with --audit-key FILE", r.why);
		return 1;
	}
	if (err && err != HEARTH_E_CORRUPT) {
		fail("cannot read the audit chain in %s: %s", c->dir, hearth_strerror(err));
		return 1;
	}
	if (c->json && audit_verify_json(&r))
		return 1;
	if (err) {
		/* "record 17: hash ..." reads "broken at record 17: hash ..." */
		why = r.why;
		snprintf(lead, sizeof(lead), "record %" PRIu64 ": ", r.bad_seq);
		if (!strncmp(why, lead, strlen(lead)))
			why += strlen(lead);
		fflush(stdout);
		fail("audit chain broken at record %" PRIu64 ": %s", r.bad_seq, why);
		return 1;
	}
	if (c->json)
		return 0;
	if (r.records)
		printf("audit chain verifies: records %" PRIu64 "-%" PRIu64 " (%" PRIu64 " records",
		       r.first_seq, r.last_seq, r.records);
	else
		printf("audit chain verifies: no records (");
	if (r.pruned_upto)
		printf("%s1-%" PRIu64 " pruned under a signed checkpoint", r.records ? "; " : "",
		       r.pruned_upto);
	else if (!r.records)
		printf("none written yet");
	if (r.sealed)
		printf("; %" PRIu64 " sealed", r.sealed);
	printf(")\n");
	return 0;
}

static int
audit_export(const struct ctl *c, hearth_store *st)
{
	const char *name = c->audit_file && strcmp(c->audit_file, "-") ? c->audit_file : NULL;
	FILE *f = stdout;
	long n;
	int fd, err;

	if (name) {
		fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		f = fd < 0 ? NULL : fdopen(fd, "w");
		if (!f) {
			fail("cannot write %s: %s", name, strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
	}
	errno = 0;
	n = hearth_audit_export(st, f);
	err = errno;
	if (name && fclose(f) == EOF && n >= 0) {
		n = -EIO;
		err = errno;
	}
	if (n == HEARTH_E_CONFIG) {
		fail("the audit chain holds sealed records: pass its key file with --audit-key "
		     "FILE");
	} else if (n == HEARTH_E_CORRUPT) {
		fail("a record of the audit chain cannot be read (the ones before it were "
		     "written): run hearthctl audit verify");
	} else if (n == -EIO) {
		fail("cannot write %s: %s", name ? name : "standard output",
		     strerror(err ? err : EIO));
	} else if (n < 0) {
		fail("cannot read the audit chain in %s: %s", c->dir, hearth_strerror((int)n));
	}
	if (n < 0)
		return 1;
	if (name && c->json) {
		cJSON *o = cJSON_CreateObject();
		int rc;

		if (!o || !cJSON_AddNumberToObject(o, "exported", (double)n) ||
		    !cJSON_AddStringToObject(o, "file", name)) {
			cJSON_Delete(o);
			fail("out of memory");
			return 1;
		}
		rc = print_json(o);
		cJSON_Delete(o);
		return rc;
	}
	if (name)
		printf("exported %ld audit record%s to %s\n", n, n == 1 ? "" : "s", name);
	return 0;
}

/* audit verify / export: always the store itself, never the daemon. */
static int
cmd_audit(const struct ctl *c)
{
	hearth_store *st = audit_open(c);
	int rc;

	if (!st)
		return 1;
	if (!strcmp(c->audit_sub, "verify"))
		rc = audit_verify(c, st);
	else
		rc = audit_export(c, st);
	audit_close(st);
	return rc;
}

/* ==== Main ==== */

/* ==== Plan preview ==== */

/* args as a person reads them: "on, brightness 30". */
static void
sb_args(struct hearth_strbuf *b, const cJSON *args)
{
	const cJSON *a;
	bool first = true;

	cJSON_ArrayForEach(a, args)
	{
		hearth_strbuf_addf(b, "%s", first ? "" : ", ");
		first = false;
		if (cJSON_IsBool(a))
			hearth_strbuf_addf(b, "%s%s", cJSON_IsTrue(a) ? "" : "not ", a->string);
		else if (cJSON_IsNumber(a))
			hearth_strbuf_addf(b, "%s %g", a->string, a->valuedouble);
		else
			hearth_strbuf_addf(b, "%s", a->string);
	}
}

static double
num_or(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* The chosen plan's score and the candidates it was weighed against. */
static int
print_score(const cJSON *r)
{
	static const char *const dims[] = {"latency", "friction", "comfort", "privacy", "energy"};
	const cJSON *sc = hearth_json_obj(r, "score"), *e = hearth_json_obj(sc, "estimate"), *a;
	struct table t = {
	        .ncols = 4,
	        .head = {"RANK", "RECIPE", "DEVICES", "SCORE"},
	        .max = {6, 32, 48, 0},
	};
	int err = 0;

	if (!sc || !cJSON_GetObjectItemCaseSensitive(sc, "total"))
		return 0;
	printf("score: %.2f (", num_or(sc, "total", 0));
	for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
		printf("%s%s %.2f", d ? ", " : "", dims[d], num_or(sc, dims[d], 0));
	printf("); about %.0f ms, %.0f approval(s), %.0f W\n", num_or(e, "latency_ms", 0),
	       num_or(e, "approvals", 0), num_or(e, "watts", 0));
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "alternatives")) < 2)
		return 0;
	printf("\nalternatives:\n");
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(r, "alternatives"))
	{
		struct hearth_strbuf b[4] = {{0}};
		const cJSON *d;
		bool first = true;

		if (cJSON_GetObjectItemCaseSensitive(a, "excluded"))
			hearth_strbuf_addf(&b[0], "-");
		else
			hearth_strbuf_addf(
			        &b[0], "%.0f%s", num_or(a, "rank", 0),
			        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "chosen")) ? " *"
			                                                                    : "");
		hearth_strbuf_addf(&b[1], "%s", str_or(a, "recipe", "?"));
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(a, "devices"))
		{
			hearth_strbuf_addf(&b[2], "%s%s", first ? "" : " ",
			                   cJSON_IsString(d) ? d->valuestring : "?");
			first = false;
		}
		if (cJSON_GetObjectItemCaseSensitive(a, "excluded"))
			hearth_strbuf_addf(&b[3], "excluded (%s)", str_or(a, "excluded", "?"));
		else
			hearth_strbuf_addf(&b[3], "%.2f",
			                   num_or(hearth_json_obj(a, "score"), "total", 0));
		if ((err = table_add(&t, b)))
			break;
	}
	return table_done(&t, err);
}

static int
print_plan(const struct ctl *c, const cJSON *r)
{
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(r, "steps"), *st;
	struct table t = {
	        .ncols = 5,
	        .head = {"STEP", "DEVICE", "CAPABILITY", "SET", "STATE"},
	        .max = {24, 32, 24, 40, 0},
	};
	struct hearth_strbuf slots = {0};
	char *text;
	int err = 0;

	if (c->json)
		return print_json(r);
	if (cJSON_GetObjectItemCaseSensitive(r, "error")) {
		fail("%s: %s", str_or(r, "error", "?"), str_or(r, "detail", ""));
		return 1;
	}
	sb_pairs(&slots, hearth_json_obj(r, "slots"), " ");
	text = hearth_strbuf_take(&slots);
	printf("%s (recipe %s)%s%s: plan %s, %s, nothing sent\n", str_or(r, "intent", "?"),
	       str_or(r, "recipe", "?"), text && text[0] ? ", " : "", text ? text : "",
	       str_or(r, "plan_id", "?"), str_or(r, "state", "?"));
	hearth_free(text);
	cJSON_ArrayForEach(st, steps)
	{
		struct hearth_strbuf b[5] = {{0}};

		hearth_strbuf_addf(&b[0], "%s", str_or(st, "id", "?"));
		hearth_strbuf_addf(&b[1], "%s", str_or(st, "device", "?"));
		hearth_strbuf_addf(&b[2], "%s", str_or(st, "capability", "?"));
		sb_args(&b[3], hearth_json_obj(st, "args"));
		hearth_strbuf_addf(&b[4], "%s", str_or(st, "state", "?"));
		if ((err = table_add(&t, b)))
			break;
	}
	if (table_done(&t, err))
		return 1;
	printf("\nwhy: %s\n", str_or(r, "rationale", ""));
	if (print_score(r))
		return 1;
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "policy_hash")))
		printf("policy: %.12s\n", str_or(r, "policy_hash", ""));
	return 0;
}

/* plan TEXT: the daemon plans against the live home and sends nothing. */
static int
cmd_plan(const struct ctl *c)
{
	cJSON *req = cJSON_CreateObject(), *result = NULL;
	int rc = 1;

	if (!req)
		return 1;
	cJSON_AddStringToObject(req, "cmd", "plan");
	cJSON_AddStringToObject(req, "text", c->plan_text);
	switch (daemon_call(c->dir, req, &result)) {
	case CALL_OK:
		rc = print_plan(c, result);
		break;
	case CALL_NO_DAEMON:
		fail("hearthd is not running (no socket at %s/" SOCK_NAME
		     "): a plan is made against "
		     "the live home; start hearthd first",
		     c->dir);
		break;
	default:
		break;
	}
	cJSON_Delete(result);
	cJSON_Delete(req);
	return rc;
}

/* ==== Constraints ==== */

/* The rules and their hash, for a person: one line per rule. */
static int
print_constraints(const struct ctl *c, const cJSON *res)
{
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(res, "rules"), *r;

	if (c->json)
		return print_json(res);
	printf("policy hash: %s\n", str_or(res, "policy_hash", "?"));
	if (!cJSON_GetArraySize(rules)) {
		printf("no hard rules\n");
		return 0;
	}
	printf("%d hard rule%s:\n", cJSON_GetArraySize(rules),
	       cJSON_GetArraySize(rules) == 1 ? "" : "s");
	cJSON_ArrayForEach(r, rules)
	{
		printf("  %s: %s\n", str_or(r, "id", "?"),
		       str_or(r, "reason", "(no reason given)"));
	}
	return 0;
}

/* A JSON file for constraints load / add, or NULL (reason printed). */
static cJSON *
read_json_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, why[128];
	size_t len = 0, cap = 0;
	cJSON *js = NULL;

	if (!f) {
		fail("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 4096;
			if (cap > HEARTH_CONSTRAINTS_FILE_MAX || !(nb = hearth_realloc(buf, cap))) {
				fail("%s is too large", path);
				goto out;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (hearth_json_parse(buf, len, &js, why, sizeof(why)))
		fail("%s: %s", path, why);
out:
	hearth_free(buf);
	fclose(f);
	return js;
}

/*
 * constraints: through the daemon when it runs (it commits, audits the change
 * and plans under the new hash at once); otherwise on the store directly.
 */
static int
cmd_constraints(const struct ctl *c)
{
	const char *sub = c->cons_sub ? c->cons_sub : "list";
	cJSON *req = cJSON_CreateObject(), *doc = NULL, *result = NULL;
	char path[PATH_MAX], why[512] = "";
	hearth_store *st = NULL;
	int rc = 1, err;

	if (!req)
		return 1;
	if (!strcmp(sub, "list")) {
		cJSON_AddStringToObject(req, "cmd", "constraints");
	} else if (!strcmp(sub, "remove")) {
		cJSON_AddStringToObject(req, "cmd", "constraints.remove");
		cJSON_AddStringToObject(req, "id", c->cons_arg);
	} else {
		if (!realpath(c->cons_arg, path)) {
			fail("cannot read %s: %s", c->cons_arg, strerror(errno));
			goto out;
		}
		if (!(doc = read_json_file(path)))
			goto out;
		if (!strcmp(sub, "load")) {
			cJSON_AddStringToObject(req, "cmd", "constraints.load");
			cJSON_AddStringToObject(req, "file", path);
		} else {
			cJSON_AddStringToObject(req, "cmd", "constraints.add");
			cJSON_AddItemToObject(req, "rule", cJSON_Duplicate(doc, 1));
		}
	}
	switch (daemon_call(c->dir, req, &result)) {
	case CALL_OK:
		rc = print_constraints(c, result);
		goto out;
	case CALL_NO_DAEMON:
		break;
	default:
		goto out;
	}
	/* No daemon: change the store itself (it plans under it at its next start). */
	{
		struct hearth_store_opts o = {.dir = c->dir, .read_only = true};

		/* Read-only first: a mistyped --data must not create a store. */
		err = hearth_store_open(&o, &st, why, sizeof(why));
		if (!err && strcmp(sub, "list")) {
			hearth_store_close(st);
			st = NULL;
			o.read_only = false;
			err = hearth_store_open(&o, &st, why, sizeof(why));
		}
		if (err) {
			fail("hearthd is not running and the store cannot be opened: %s", why);
			goto out;
		}
	}
	if (strcmp(sub, "list"))
		fprintf(stderr, "hearthctl: hearthd is not running; changing the store in %s\n",
		        c->dir);
	if (!strcmp(sub, "load"))
		err = hearth_constraints_replace(st, doc, path, why, sizeof(why));
	else if (!strcmp(sub, "add"))
		err = hearth_constraints_add(st, doc, path, why, sizeof(why));
	else if (!strcmp(sub, "remove"))
		err = hearth_constraints_remove(st, c->cons_arg);
	else
		err = 0;
	if (!err && strcmp(sub, "list")) {
		/* The same trace the daemon leaves: who changed the rules, how. */
		char before[65] = "", after[65] = "";

		hearth_constraints_policy_hash(st, before);
		err = hearth_store_flush(st, why, sizeof(why));
		if (!err)
			err = hearth_constraints_policy_hash(st, after);
		if (!err && strcmp(before, after)) {
			cJSON *d = cJSON_CreateObject();
			char cmd[48], *text;

			snprintf(cmd, sizeof(cmd), "constraints.%s", sub);
			cJSON_AddStringToObject(d, "command", cmd);
			cJSON_AddStringToObject(d, "argument",
			                        !strcmp(sub, "remove") ? c->cons_arg : path);
			cJSON_AddStringToObject(d, "policy_hash_before", before);
			cJSON_AddStringToObject(d, "policy_hash", after);
			cJSON_AddStringToObject(d, "by", "hearthctl");
			text = hearth_json_print(d);
			cJSON_Delete(d);
			err = text ? hearth_audit_append(st, (int64_t)time(NULL) * 1000,
			                                 "constraints.changed", "hearthctl", text)
			           : -ENOMEM;
			hearth_free(text);
			if (!err)
				err = hearth_store_flush(st, why, sizeof(why));
		}
	}
	if (err) {
		fail("%s", why[0] ? why : hearth_strerror(err));
		goto out;
	}
	{
		char hash[65];
		cJSON *rules = NULL;

		err = hearth_constraints_get(st, &rules, hash);
		if (err) {
			fail("reading the hard rules: %s", hearth_strerror(err));
			goto out;
		}
		result = cJSON_CreateObject();
		cJSON_AddStringToObject(result, "policy_hash", hash);
		cJSON_AddItemToObject(result, "rules", rules);
		rc = print_constraints(c, result);
	}
out:
	hearth_store_close(st);
	cJSON_Delete(result);
	cJSON_Delete(doc);
	cJSON_Delete(req);
	return rc;
}

/* ==== Pairing ==== */

/* A broker address a phone cannot reach: the hub's own loopback. */
static bool
loopback(const char *broker)
{
	return !strncmp(broker, "localhost:", 10) || !strncmp(broker, "127.", 4) ||
	       !strncmp(broker, "[::1]:", 6);
}

/*
 * pair's answer: the pairing payload (one line of JSON, for a QR code), then
 * the key alone on the last line (DESIGN.md section 6). --json: one object
 * with both. The key goes to standard output only.
 */
static int
print_pair(const struct ctl *c, cJSON *r)
{
	const char *key = str_or(r, "key", ""), *broker = c->broker;
	cJSON *payload = cJSON_CreateObject();
	struct hearth_strbuf b = {0};
	char *text, daemon_broker[300];
	int rc = 1;

	/* a copy: --json drops "broker" from r before the note reads it */
	if (!broker && str_or(r, "broker", NULL)) {
		snprintf(daemon_broker, sizeof(daemon_broker), "%s", str_or(r, "broker", ""));
		broker = daemon_broker;
	}
	if (!payload || strlen(key) != 2 * HEARTH_APPROVER_KEY_LEN) {
		fail("hearthd's answer has no key");
		goto out;
	}
	cJSON_AddStringToObject(payload, "hub", str_or(r, "hub", "?"));
	if (broker)
		cJSON_AddStringToObject(payload, "broker", broker);
	cJSON_AddStringToObject(payload, "approver", str_or(r, "approver", "?"));
	cJSON_AddStringToObject(payload, "key", key);
	if (c->json) {
		cJSON_DeleteItemFromObjectCaseSensitive(r, "broker");
		cJSON_AddItemToObject(r, "payload", payload);
		payload = NULL;
		rc = print_json(r);
		goto out;
	}
	if (!(text = hearth_json_print(payload))) {
		fail("out of memory");
		goto out;
	}
	sb_local_time(&b, cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "paired_at")));
	printf("%s %s at %s\n", str_or(r, "approver", "?"),
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "rotated"))
	               ? "has a new key (the old one no longer works)"
	               : "is paired",
	       b.buf ? b.buf : "-");
	printf("pairing payload (show it to the phone app as a QR code; it holds the key):\n%s\n"
	       "key:\n%s\n",
	       text, key);
	explicit_bzero(text, strlen(text));
	hearth_free(text);
	rc = 0;
out:
	fflush(stdout);
	if (!rc && !broker)
		fail("note: the payload names no broker: pass --broker HOST:PORT, the address "
		     "phones reach the broker at");
	else if (!rc && loopback(broker))
		fail("note: the payload's broker %s is the hub's own loopback, which a phone "
		     "cannot reach: pass --broker HOST:PORT",
		     broker);
	hearth_strbuf_free(&b);
	cJSON_Delete(payload);
	return rc;
}

static int
print_pairs(const struct ctl *c, const cJSON *arr)
{
	const cJSON *p;

	if (c->json)
		return print_json(arr);
	if (!cJSON_GetArraySize(arr)) {
		printf("no paired phones\n");
		return 0;
	}
	printf("%-24s %s\n", "APPROVER", "PAIRED");
	cJSON_ArrayForEach(p, arr)
	{
		struct hearth_strbuf b = {0};

		sb_local_time(
		        &b, cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "paired_at")));
		printf("%-24s %s\n", str_or(p, "approver", "?"), b.buf ? b.buf : "-");
		hearth_strbuf_free(&b);
	}
	return 0;
}

/* pair, unpair and pairs on the store itself, when no daemon runs. */
static cJSON *
pair_in_store(const struct ctl *c, hearth_store *st)
{
	struct hearth_store_info info;
	char hex[2 * HEARTH_APPROVER_KEY_LEN + 1] = "", why[512] = "", prefix[96];
	int64_t now = (int64_t)time(NULL) * 1000;
	bool rotated = false;
	cJSON *r = NULL;
	int err;

	if (c->cmd == CMD_PAIRS) {
		if ((err = hearth_approvers_list(st, &r)))
			fail("reading the paired phones: %s", hearth_strerror(err));
		return r;
	}
	err = c->cmd == CMD_UNPAIR
	              ? hearth_approver_unpair(st, c->pair_name, now)
	              : hearth_approver_pair(st, c->pair_name, c->rotate, now, hex, &rotated);
	if (err == HEARTH_E_NOT_FOUND && c->cmd == CMD_UNPAIR) {
		fail("%s is not paired (hearthctl pairs lists who is)", c->pair_name);
		return NULL;
	}
	if (err == HEARTH_E_BUSY) {
		fail("%s is already paired: hearthctl pair %s --rotate gives it a new key (the old "
		     "one stops working), hearthctl unpair %s removes it",
		     c->pair_name, c->pair_name, c->pair_name);
		return NULL;
	}
	if (!err)
		err = hearth_store_flush(st, why, sizeof(why));
	if (!err)
		err = hearth_store_info(st, &info);
	if (err) {
		fail("%s %s: %s", c->cmd == CMD_PAIR ? "pair" : "unpair", c->pair_name,
		     why[0] ? why : hearth_strerror(err));
		explicit_bzero(hex, sizeof(hex));
		return NULL;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "approver", c->pair_name);
	if (c->cmd == CMD_UNPAIR) {
		cJSON_AddBoolToObject(r, "unpaired", true);
		return r;
	}
	snprintf(prefix, sizeof(prefix), "hearth/%s", info.home_id);
	cJSON_AddNumberToObject(r, "paired_at", (double)now);
	cJSON_AddBoolToObject(r, "rotated", rotated);
	cJSON_AddStringToObject(r, "hub", prefix);
	cJSON_AddStringToObject(r, "key", hex);
	explicit_bzero(hex, sizeof(hex));
	return r;
}

/*
 * pair / unpair / pairs: through the daemon when it runs (one writer of the
 * audit chain); otherwise on the store itself, which must exist.
 */
static int
cmd_pair(const struct ctl *c)
{
	static const char *const names[] = {
	        [CMD_PAIR] = "pair", [CMD_UNPAIR] = "unpair", [CMD_PAIRS] = "pairs"};
	struct hearth_store_opts o = {.dir = c->dir, .read_only = true};
	cJSON *req = cJSON_CreateObject(), *result = NULL;
	hearth_store *st = NULL;
	char why[512];
	int rc = 1, err;

	if (!req || !cJSON_AddStringToObject(req, "cmd", names[c->cmd]) ||
	    (c->pair_name && !cJSON_AddStringToObject(req, "name", c->pair_name)) ||
	    (c->rotate && !cJSON_AddBoolToObject(req, "rotate", true))) {
		fail("out of memory");
		goto out;
	}
	switch (daemon_call(c->dir, req, &result)) {
	case CALL_OK:
		break;
	case CALL_NO_DAEMON:
		/* Read-only first: a mistyped --data must not create a store. */
		err = hearth_store_open(&o, &st, why, sizeof(why));
		if (!err && c->cmd != CMD_PAIRS) {
			hearth_store_close(st);
			st = NULL;
			o.read_only = false;
			err = hearth_store_open(&o, &st, why, sizeof(why));
		}
		if (err) {
			fail("hearthd is not running and the store cannot be opened: %s", why);
			goto out;
		}
		if (c->cmd != CMD_PAIRS)
			fprintf(stderr,
			        "hearthctl: hearthd is not running; changing the store in %s\n",
			        c->dir);
		if (!(result = pair_in_store(c, st)))
			goto out;
		break;
	default:
		goto out;
	}
	if (c->cmd == CMD_PAIR)
		rc = print_pair(c, result);
	else if (c->cmd == CMD_PAIRS)
		rc = print_pairs(c, result);
	else
		rc = c->json ? print_json(result) : (printf("%s is unpaired\n", c->pair_name), 0);
out:
	hearth_store_close(st);
	cJSON_Delete(result);
	cJSON_Delete(req);
	return rc;
}

/* ==== Consents ==== */

static int
print_consents(const struct ctl *c, const cJSON *list)
{
	struct table t = {
	        .ncols = 5,
	        .head = {"SCOPE", "STANDING", "BY", "SINCE", "APPROVED/DENIED"},
	        .max = {64, 8, 24, 20, 0},
	};
	const cJSON *e;
	int err = 0;

	if (c->json)
		return print_json(list);
	if (!cJSON_GetArraySize(list)) {
		printf("no consents and no counted approvals\n");
		return 0;
	}
	cJSON_ArrayForEach(e, list)
	{
		struct hearth_strbuf b[5] = {{0}};

		hearth_strbuf_addf(&b[0], "%s", str_or(e, "scope", "?"));
		hearth_strbuf_addf(&b[1], "%s",
		                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "standing"))
		                           ? "yes"
		                           : "no");
		hearth_strbuf_addf(&b[2], "%s", str_or(e, "by", "-"));
		sb_local_time(&b[3], num_or(e, "at", 0));
		if (cJSON_GetObjectItemCaseSensitive(e, "approved"))
			hearth_strbuf_addf(&b[4], "%.0f/%.0f", num_or(e, "approved", 0),
			                   num_or(e, "denied", 0));
		else
			hearth_strbuf_addf(&b[4], "-");
		if ((err = table_add(&t, b)))
			break;
	}
	return table_done(&t, err);
}

/*
 * consent [list] / grant SCOPE / revoke SCOPE: through the daemon when it
 * runs (one writer of the audit chain); otherwise on the store itself.
 */
static int
cmd_consent(const struct ctl *c)
{
	const char *sub = c->consent_sub ? c->consent_sub : "list";
	bool change = strcmp(sub, "list") != 0;
	struct hearth_store_opts o = {.dir = c->dir, .read_only = !change};
	cJSON *req = cJSON_CreateObject(), *result = NULL;
	hearth_store *st = NULL;
	char why[512] = "";
	int rc = 1, err;

	if (!req ||
	    !cJSON_AddStringToObject(req, "cmd",
	                             !change                 ? "consents"
	                             : !strcmp(sub, "grant") ? "consent.grant"
	                                                     : "consent.revoke") ||
	    (change && !cJSON_AddStringToObject(req, "scope", c->consent_scope))) {
		fail("out of memory");
		goto out;
	}
	switch (daemon_call(c->dir, req, &result)) {
	case CALL_OK:
		break;
	case CALL_NO_DAEMON:
		o.read_only = true; /* a mistyped --data must not create a store */
		err = hearth_store_open(&o, &st, why, sizeof(why));
		if (!err && change) {
			hearth_store_close(st);
			st = NULL;
			o.read_only = false;
			err = hearth_store_open(&o, &st, why, sizeof(why));
		}
		if (err) {
			fail("hearthd is not running and the store cannot be opened: %s", why);
			goto out;
		}
		if (change) {
			fprintf(stderr,
			        "hearthctl: hearthd is not running; changing the store in %s\n",
			        c->dir);
			err = hearth_consent_owner(st, c->consent_scope, !strcmp(sub, "grant"),
			                           (int64_t)time(NULL) * 1000);
			if (err == HEARTH_E_INVALID) {
				fail("\"%.80s\" is not a scope: 1-256 printable characters, no "
				     "spaces",
				     c->consent_scope);
				goto out;
			}
			if (!err)
				err = hearth_store_flush(st, why, sizeof(why));
			if (err) {
				fail("consent %s %s: %s", sub, c->consent_scope,
				     why[0] ? why : hearth_strerror(err));
				goto out;
			}
		}
		if ((err = hearth_consents_list(st, &result))) {
			fail("reading the consents: %s", hearth_strerror(err));
			goto out;
		}
		break;
	default:
		goto out;
	}
	if (change && !c->json)
		printf("%s: %s\n", c->consent_scope,
		       !strcmp(sub, "grant") ? "pre-approved by the owner"
		                             : "pre-approval and counted approvals removed");
	rc = print_consents(c, result);
out:
	hearth_store_close(st);
	cJSON_Delete(result);
	cJSON_Delete(req);
	return rc;
}

/* ==== Recipes ==== */

/*
 * recipes validate FILE: "FILE: ok (id VERSION, N steps)", else every problem
 * on stderr, one line each.
 */
static int
recipes_validate(const char *file)
{
	struct hearth_recipe *r = NULL;
	char why[8192];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(file, "r");
	int rc;

	if (!f) {
		fprintf(stderr, "%s: cannot read: %s\n", file, strerror(errno));
		return 1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 4096;
			if (cap > (1u << 21) || !(nb = hearth_realloc(buf, cap))) {
				fprintf(stderr, "%s: too large\n", file);
				hearth_free(buf);
				fclose(f);
				return 1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	rc = hearth_recipe_parse(buf, len, file, &r, why, sizeof(why));
	hearth_free(buf);
	if (rc) {
		fprintf(stderr, "%s\n", why[0] ? why : hearth_strerror(rc));
		return 1;
	}
	printf("%s: ok (%s %s, %d step%s)\n", file, r->id, r->version, r->nsteps,
	       r->nsteps == 1 ? "" : "s");
	hearth_recipe_free(r);
	return 0;
}

static void
recipe_problem(void *ud, const char *line)
{
	(void)ud;
	fprintf(stderr, "hearthctl: %s (not loaded)\n", line);
}

/* The recipes of a folder as the daemon lists them. */
static cJSON *
recipes_from_dir(const char *dir)
{
	hearth_recipe_book *b = NULL;
	cJSON *arr;
	char why[512];

	if (hearth_recipe_book_load(dir, &b, recipe_problem, NULL, why, sizeof(why))) {
		fail("%s", why);
		return NULL;
	}
	arr = cJSON_CreateArray();
	for (int i = 0; arr && i < hearth_recipe_book_count(b); i++) {
		const struct hearth_recipe *r = hearth_recipe_book_at(b, i);
		cJSON *o = cJSON_CreateObject(), *in = cJSON_CreateArray(),
		      *se = cJSON_CreateArray();

		for (int k = 0; in && k < r->nintents; k++)
			cJSON_AddItemToArray(in, cJSON_CreateString(r->intents[k]));
		for (int k = 0; se && k < r->nsentences; k++)
			cJSON_AddItemToArray(se, cJSON_CreateString(r->sentences[k]));
		cJSON_AddStringToObject(o, "id", r->id);
		cJSON_AddStringToObject(o, "version", r->version);
		cJSON_AddStringToObject(o, "title", r->title ? r->title : "");
		cJSON_AddItemToObject(o, "intents", in);
		cJSON_AddItemToObject(o, "sentences", se);
		cJSON_AddStringToObject(o, "approval", hearth_recipe_approval_name(r->approval));
		cJSON_AddStringToObject(o, "mode", hearth_recipe_mode_name(r->mode));
		cJSON_AddNumberToObject(o, "steps", r->nsteps);
		cJSON_AddStringToObject(o, "file", r->file);
		cJSON_AddItemToArray(arr, o);
	}
	hearth_recipe_book_free(b);
	return arr;
}

static int
print_recipes(const struct ctl *c, const cJSON *arr)
{
	const cJSON *r;

	if (c->json)
		return print_json(arr);
	if (!cJSON_GetArraySize(arr)) {
		printf("no recipes\n");
		return 0;
	}
	printf("%-22s %-8s %-22s %5s  %-8s %s\n", "ID", "VERSION", "INTENTS", "STEPS", "APPROVAL",
	       "TITLE");
	cJSON_ArrayForEach(r, arr)
	{
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(r, "intents"), *i;
		const cJSON *steps = cJSON_GetObjectItemCaseSensitive(r, "steps");
		char intents[256] = "";
		size_t n = 0;

		cJSON_ArrayForEach(i, in)
		{
			if (cJSON_IsString(i) && n < sizeof(intents))
				n += (size_t)snprintf(intents + n, sizeof(intents) - n, "%s%s",
				                      n ? "," : "", i->valuestring);
		}
		printf("%-22s %-8s %-22s %5d  %-8s %s\n", str_or(r, "id", "?"),
		       str_or(r, "version", "?"), intents[0] ? intents : "-",
		       cJSON_IsNumber(steps) ? steps->valueint : 0, str_or(r, "approval", "?"),
		       str_or(r, "title", ""));
	}
	return 0;
}

/*
 * recipes: the daemon's loaded book when it runs (unless --recipes names a
 * folder), else the recipe folder; recipes validate FILE needs no daemon.
 */
static int
cmd_recipes(const struct ctl *c)
{
	cJSON *req, *result = NULL;
	int rc = 1;

	if (c->recipes_sub)
		return recipes_validate(c->recipes_arg);
	if (c->recipes_dir) {
		result = recipes_from_dir(c->recipes_dir);
	} else {
		req = cJSON_CreateObject();
		if (!req || !cJSON_AddStringToObject(req, "cmd", "recipes")) {
			cJSON_Delete(req);
			fail("out of memory");
			return 1;
		}
		switch (daemon_call(c->dir, req, &result)) {
		case CALL_OK:
			break;
		case CALL_NO_DAEMON:
			result = recipes_from_dir(HEARTH_RECIPES_DIR);
			break;
		default:
			break;
		}
		cJSON_Delete(req);
	}
	if (result)
		rc = print_recipes(c, result);
	cJSON_Delete(result);
	return rc;
}

static cJSON *
make_request(const struct ctl *c)
{
	cJSON *req = cJSON_CreateObject();
	const char *name = c->cmd == CMD_STATUS    ? "status"
	                   : c->cmd == CMD_DEVICES ? "devices"
	                   : c->cmd == CMD_TRACE   ? "trace"
	                                           : "episodes";

	if (!req || !cJSON_AddStringToObject(req, "cmd", name) ||
	    (c->cmd == CMD_EPISODES && !cJSON_AddNumberToObject(req, "limit", c->limit)) ||
	    (c->cmd == CMD_TRACE && !cJSON_AddStringToObject(req, "recipe", c->target)) ||
	    (c->cmd == CMD_TRACE && c->limit_set &&
	     !cJSON_AddNumberToObject(req, "limit", c->limit))) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

int
main(int argc, char **argv)
{
	struct ctl c = {.limit = LIMIT_DEFAULT};
	cJSON *req, *result = NULL;
	int rc;

	hearth_alloc_init();
	hearth_log_set_level(HEARTH_LOG_WARN); /* the library's info lines are not for the CLI */
	rc = parse_args(argc, argv, &c);
	if (rc >= 0)
		return rc;
	if (c.cmd == CMD_HELP) {
		usage(stdout);
		return 0;
	}
	if (c.cmd == CMD_VERSION) {
		puts("hearthctl " HEARTH_VERSION);
		return 0;
	}
	if (!c.dir)
		c.dir = geteuid() == 0 ? "/var/lib/hearth" : "./hearth-data";
	rc = backup_command(&c);
	if (rc >= 0)
		return rc;
	if (c.cmd == CMD_AUDIT)
		return cmd_audit(&c);
	if (c.cmd == CMD_PLAN)
		return cmd_plan(&c);
	if (c.cmd == CMD_CONSTRAINTS)
		return cmd_constraints(&c);
	if (c.cmd == CMD_RECIPES)
		return cmd_recipes(&c);
	if (c.cmd == CMD_PAIR || c.cmd == CMD_UNPAIR || c.cmd == CMD_PAIRS)
		return cmd_pair(&c);
	if (c.cmd == CMD_CONSENT)
		return cmd_consent(&c);

	req = make_request(&c);
	if (!req) {
		fail("out of memory");
		return 1;
	}
	switch (daemon_call(c.dir, req, &result)) {
	case CALL_OK:
		rc = show(&c, result);
		break;
	case CALL_NO_DAEMON:
		rc = from_store(&c);
		break;
	default:
		rc = 1;
		break;
	}
	cJSON_Delete(result);
	cJSON_Delete(req);
	return rc;
}
