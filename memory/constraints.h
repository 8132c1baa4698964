/*
 * constraints.h - constraint memory: the hard rules of a home, kept by id in
 * the `constraints` database (DESIGN.md sections 3 and 5), and the policy
 * hash every plan records.
 *
 * A rule is declarative JSON:
 *
 *   {"id": "no_unlock_when_away",
 *    "when": {"all": [{"flag": "someone_home", "is": false},
 *                     {"time": {"from": "22:00", "to": "06:00"}},
 *                     {"device": "door-1", "property": "locked", "is": true}]},
 *    "forbid": {"capability": "lock.lock", "args": {"locked": false}},
 *    "approval_lifts": true,
 *    "reason": "never unlock while nobody is home"}
 *
 *   id              1..64 characters of [A-Za-z0-9_.-]
 *   when            optional (absent: always) condition, one of
 *                     {"all": [cond, ...]} / {"any": [cond, ...]} (non-empty)
 *                     {"not": cond}
 *                     {"flag": name, "is": bool}            a context flag
 *                     {"device": id, "property": name, "is": value}
 *                     {"device": id, "property": name, "lt": n, "gt": n}
 *                         (lt and/or gt; is is a scalar, exclusive with them)
 *                     {"time": {"from": "HH:MM", "to": "HH:MM"}}
 *                         (local time, from inclusive, to exclusive; may
 *                         wrap midnight; from != to)
 *                   nested at most HEARTH_CONSTRAINT_DEPTH_MAX deep
 *   forbid | cap | risk   exactly one of
 *                     "forbid": {"capability": c, "device"?: id, "args"?: {...}}
 *                         no step with that capability (on that device, with
 *                         those argument values) may run
 *                     "cap": {"capability": c, "property": p, "device"?: id,
 *                             "min"?: n, "max"?: n}   (at least one, min <= max)
 *                     "risk": {"capability": c, "device"?: id, "args"?: {...},
 *                              "level": "low"|"medium"|"high"}
 *                         the steps a forbid with that selector would match
 *                         have this risk (instead of the built-in class; the
 *                         highest level wins among matching rules)
 *   approval_lifts  optional bool (default false): an approval lifts the rule
 *                   (forbid and cap only)
 *   reason          1..512 characters, shown to the user
 *
 * Unknown keys and keys that appear twice are errors. Evaluating rules is the
 * planner's business: this module validates, stores and hands them out.
 *
 * Policy hash: lowercase hex SHA-256 of the canonical rule set, the JSON
 * array of the rules in id order (byte order), each printed compact
 * (cJSON_PrintUnformatted) with the keys of every object sorted by byte
 * order. The empty set is "[]", so its hash is SHA-256("[]") =
 * 4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945. Rules are
 * stored in this canonical form.
 */
#ifndef HEARTH_MEMORY_CONSTRAINTS_H
#define HEARTH_MEMORY_CONSTRAINTS_H

#include "memory/store.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define HEARTH_CONSTRAINTS_MAX      1024      /* rules in a set */
#define HEARTH_CONSTRAINTS_FILE_MAX (1 << 20) /* bytes of a rule file */
#define HEARTH_CONSTRAINT_DEPTH_MAX 16        /* nesting of conditions */
/* The policy hash of the empty rule set: SHA-256("[]"). */
#define HEARTH_POLICY_HASH_EMPTY "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"

/*
 * Check one rule. On error returns HEARTH_E_INVALID and writes into why
 * "<source>: <path>: <what is wrong>", e.g. "cli: when.all[0].flag: expected
 * a string, got number". source may be NULL.
 */
int hearth_constraint_validate(const cJSON *rule, const char *source, char *why, size_t why_len);
/*
 * Check a rule set (an array of rules, unique ids, at most
 * HEARTH_CONSTRAINTS_MAX). Errors name the rule: "rules.json: rules[2].when:
 * ..."; HEARTH_E_TOO_LARGE for too many rules.
 */
int hearth_constraints_validate(const cJSON *rules, const char *source, char *why, size_t why_len);

/*
 * Queue replacing the whole stored set by rules (validated first), in one
 * apply op: after the flush the store holds exactly these rules. 0, or the
 * validation error with why filled, -ENOMEM or -EROFS; nothing is queued on
 * error.
 */
int hearth_constraints_replace(hearth_store *st, const cJSON *rules, const char *source, char *why,
                               size_t why_len);
/*
 * Read a rule set from a JSON file (an array of rules, at most
 * HEARTH_CONSTRAINTS_FILE_MAX bytes) and queue it like
 * hearth_constraints_replace(), with the path as source. Also -errno when
 * the file cannot be read and HEARTH_E_BAD_JSON.
 */
int hearth_constraints_load_file(hearth_store *st, const char *path, char *why, size_t why_len);
/* Queue adding one rule (validated first), replacing a stored rule of the same id. */
int hearth_constraints_add(hearth_store *st, const cJSON *rule, const char *source, char *why,
                           size_t why_len);
/* Queue removing the rule id (a rule that is not there is no error). */
int hearth_constraints_remove(hearth_store *st, const char *id);

/*
 * The committed rules and their policy hash, read in one transaction (so
 * they agree). *rules gets a new JSON array of the rules in id order, in
 * canonical form (the caller frees it with cJSON_Delete); hash gets 64 hex
 * digits and a NUL. Either may be NULL. HEARTH_E_CORRUPT when a stored rule
 * does not decode.
 */
int hearth_constraints_get(hearth_store *st, cJSON **rules, char hash[65]);
/* The policy hash of the committed rules. */
int hearth_constraints_policy_hash(hearth_store *st, char out[65]);
/* The policy hash of an in-memory rule set (an array; not validated, ids may repeat). */
int hearth_constraints_hash_of(const cJSON *rules, char out[65]);
/*
 * The canonical text of any JSON value (keys sorted, compact); the caller
 * frees it with hearth_free. NULL on ENOMEM.
 */
char *hearth_constraints_canonical(const cJSON *item);

#endif
