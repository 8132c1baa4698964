/*
 * recipe.h - recipes: reusable plan templates loaded from JSON files
 * (the built-in ones are in recipes/library).
 *
 * A recipe names the intents it serves, its slots, and its steps. A step
 * selects devices by capability (and room, kind), says what to set (args),
 * and when the effect already holds (holds; default: the args themselves).
 * The orchestrator expands steps into a plan; the recipe never names devices.
 *
 * Document fields (unknown fields are ignored):
 *   id, version, title        strings (id and version required)
 *   intents                   array of intent names (at least one)
 *   sentences                 array of sentence templates for the text matcher:
 *                             "(a|b)" alternatives, "[..]" optional parts, "{slot}"
 *                             a declared slot; () and [] must balance
 *   slots                     {name: {type, required, default}}
 *   approval                  "auto" (default), "always" or "never"
 *   mode, max                 run mode when the recipe is already running:
 *                             "single" (default), "restart", "queued" or
 *                             "parallel"; max 1..64 concurrent/queued runs (1)
 *   consents                  data classes the recipe needs consent for (see
 *                             hearth_recipe_consent_names)
 *   targets                   {"latency_ms": N, "max_approvals": N}; 0: none given
 *   steps[]                   {id, capability, target {room, kind}, pick, args,
 *                             holds, after [earlier step ids], timeout_ms,
 *                             compensate}; pick "all" (default: every device the
 *                             target selects) or "one" (the planner picks one
 *                             device, and the others make alternative plans)
 *
 * An args value may be the string "{slot}" (a declared slot): the orchestrator
 * puts the slot's resolved value in its place at plan time. Such a value is
 * checked against the property's range only through the slot's default.
 */
#ifndef HEARTH_RECIPES_RECIPE_H
#define HEARTH_RECIPES_RECIPE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define HEARTH_STEP_TIMEOUT_DEFAULT_MS 10000
#define HEARTH_SLOT_NAME_MAX           64 /* slot names, and room / string slot values */

enum hearth_approval_policy {
	HEARTH_APPROVAL_AUTO,   /* only when policy says so */
	HEARTH_APPROVAL_ALWAYS, /* every run asks the owner */
	HEARTH_APPROVAL_NEVER,  /* never asks (refused instead if policy requires) */
};

enum hearth_recipe_mode {
	HEARTH_MODE_SINGLE,   /* a second run is refused while one runs */
	HEARTH_MODE_RESTART,  /* a second run replaces the running one */
	HEARTH_MODE_QUEUED,   /* runs wait for each other, up to max */
	HEARTH_MODE_PARALLEL, /* runs go side by side, up to max */
};

#define HEARTH_RECIPE_MAX_RUNS 64

struct hearth_recipe_slot {
	char *name;
	char *type; /* room, string, number, percent, temperature */
	bool required;
	cJSON *def; /* default value or NULL */
};

struct hearth_recipe_step {
	char *id;
	int cap;      /* capability index (recipes/capability.h) */
	char *room;   /* literal room, "{slot}", or NULL for the whole home */
	char *kind;   /* device kind filter or NULL */
	cJSON *args;  /* properties to set */
	cJSON *holds; /* when the effect already holds; NULL: equal to args */
	int timeout_ms;
	bool compensate; /* undo this step when the plan cannot finish */
	bool pick_one;   /* "pick": "one": one of the selected devices, not all */
	int *after;      /* indexes of earlier steps this one waits for */
	int nafter;
};

struct hearth_recipe {
	char *id;
	char *version;
	char *title;
	char *file;
	char **intents;
	int nintents;
	struct hearth_recipe_slot *slots;
	int nslots;
	struct hearth_recipe_step *steps;
	int nsteps;
	enum hearth_approval_policy approval;
	char **sentences; /* sentence templates (see above) */
	int nsentences;
	enum hearth_recipe_mode mode;
	int max;         /* 1..HEARTH_RECIPE_MAX_RUNS */
	char **consents; /* data-class names */
	int nconsents;
	int target_latency_ms;    /* 0: none given */
	int target_max_approvals; /* -1: none given */
};

/*
 * Parse and validate one recipe document. file names it in messages. The
 * whole document is checked: every problem becomes one line
 * "file: path.to.field: what is wrong" in why (lines separated by '\n', no
 * second line for a check that depends on a field already refused). When
 * why cannot take them all, its last line is "file: ... and N more problems".
 * Any problem: returns HEARTH_E_INVALID and *out stays NULL. Not JSON:
 * HEARTH_E_BAD_JSON and one line. Out of memory: -ENOMEM. Otherwise 0, why
 * empty, and the caller frees *out with hearth_recipe_free.
 */
int hearth_recipe_parse(const char *text, size_t len, const char *file, struct hearth_recipe **out,
                        char *why, size_t why_len);
void hearth_recipe_free(struct hearth_recipe *r);

/* "single", "restart", "queued" or "parallel". */
const char *hearth_recipe_mode_name(enum hearth_recipe_mode m);
/* "auto", "always" or "never". */
const char *hearth_recipe_approval_name(enum hearth_approval_policy a);

/* The data classes a recipe may list in consents, NULL-terminated. */
extern const char *const hearth_recipe_consent_names[];

/*
 * Check one sentence template: not blank, () and [] balanced and not crossed,
 * no empty group, every {slot} closed, named like a slot and declared in r. Returns 0, or
 * HEARTH_E_INVALID with what is wrong in why (no file or path).
 */
int hearth_recipe_check_sentence(const struct hearth_recipe *r, const char *tpl, char *why,
                                 size_t why_len);

/* Does v fit a slot of type (room and string: 1-64 characters; others: a number)? */
bool hearth_recipe_slot_value_ok(const char *type, const cJSON *v);

/* A recipe's slot called name, or NULL. */
const struct hearth_recipe_slot *hearth_recipe_slot(const struct hearth_recipe *r,
                                                    const char *name);

typedef struct hearth_recipe_book hearth_recipe_book;

/*
 * Load every *.json in dir (in name order). A recipe that does not validate
 * is skipped and its problems reported through report(ud, line), one call
 * per problem (line has no '\n'); so is a second recipe with an id already
 * loaded. Returns 0
 * and a book (possibly empty), or a negative error when dir cannot be read
 * (reason in why). The caller frees the book.
 */
int hearth_recipe_book_load(const char *dir, hearth_recipe_book **out,
                            void (*report)(void *ud, const char *line), void *ud, char *why,
                            size_t why_len);
void hearth_recipe_book_free(hearth_recipe_book *b);
int hearth_recipe_book_count(const hearth_recipe_book *b);
const struct hearth_recipe *hearth_recipe_book_at(const hearth_recipe_book *b, int i);
/* The first recipe that serves intent, or NULL. */
const struct hearth_recipe *hearth_recipe_book_find(const hearth_recipe_book *b,
                                                    const char *intent);

#endif
