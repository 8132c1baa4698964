/*
 * consents.h - consents and standing pre-approvals, kept by scope in the
 * `consents` database (DESIGN.md sections 1.5, 1.2 and 3).
 *
 * A scope names what a consent covers: "recipe:scene.movie_night" (a
 * recipe's approvals), "class:presence/planner" (a signal class used by an
 * agent). Its record is
 *
 *   {"grants": [{"who": "phone-1", "what": "use", "at": ms, "expires": ms}],
 *    "standing": false, "by": "phone-1", "at": ms}
 *
 * grants are individual consents (expires is absent when they do not
 * expire; one per who and what: a new grant replaces the old one); standing
 * is a pre-approval of the whole scope, with by and at saying who set or
 * cleared it last and when. Writes are queued and read-modify-write inside
 * the flush transaction; reads see what is committed. A scope is 1..256
 * bytes, who and what 1..64 characters of [A-Za-z0-9_.-].
 */
#ifndef HEARTH_MEMORY_CONSENTS_H
#define HEARTH_MEMORY_CONSENTS_H

#include "memory/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define HEARTH_CONSENT_SCOPE_MAX  256
#define HEARTH_CONSENT_GRANTS_MAX 64 /* per scope; the oldest grant goes first */

/*
 * Queue a grant of what to who in scope at at_ms, until expires_ms (0: no
 * expiry). 0, HEARTH_E_INVALID, -ENOMEM or -EROFS; nothing queued on error.
 */
int hearth_consent_grant(hearth_store *st, const char *scope, const char *who, const char *what,
                         int64_t at_ms, int64_t expires_ms);
/* Queue setting (or clearing) the scope's standing pre-approval, by who at at_ms. */
int hearth_consent_set_standing(hearth_store *st, const char *scope, bool standing, const char *by,
                                int64_t at_ms);
/*
 * Queue revoking the grants of scope that match who and what (NULL matches
 * any). With both NULL the whole record goes, standing included. A record
 * left with no grant and no standing is removed.
 */
int hearth_consent_revoke(hearth_store *st, const char *scope, const char *who, const char *what);

/*
 * The committed record of scope: a new object in *out (the caller frees it
 * with cJSON_Delete). HEARTH_E_NOT_FOUND when there is none.
 */
int hearth_consent_get(hearth_store *st, const char *scope, cJSON **out);
/*
 * Is what allowed in scope at now_ms: 1 when the scope is standing or holds
 * an unexpired grant of what (what NULL: of anything), 0 when not, or a
 * negative error.
 */
int hearth_consent_allowed(hearth_store *st, const char *scope, const char *what, int64_t now_ms);
/*
 * Visit the committed records whose scope starts with prefix (NULL or "":
 * all), in scope order. The callback gets the scope and the record's JSON
 * text (valid during the call); a non-zero return stops the walk (a negative
 * one is passed back).
 */
int hearth_consents_each(hearth_store *st, const char *prefix, hearth_store_visit_fn fn, void *ud);

/*
 * The owner's word on a scope (hearthctl consent): grant sets its standing
 * pre-approval, by "owner" (it covers high risk plans too, approval.h);
 * revoke removes the whole record and the approvals counted towards a
 * learned one (semantic approvals/<scope>). Either way an audit record
 * consent.granted / consent.revoked {"scope","standing","by":"owner"} is
 * queued with it. 0, HEARTH_E_INVALID (scope: 1..256 printable characters,
 * no spaces), -ENOMEM or -EROFS.
 */
int hearth_consent_owner(hearth_store *st, const char *scope, bool grant, int64_t now_ms);
/*
 * Every committed scope with its standing and counts, for hearthctl consent:
 * [{"scope","standing","by","at","grants","approved","denied"}] ("approved"
 * and "denied" where approvals are counted). 0 or a negative error.
 */
int hearth_consents_list(hearth_store *st, cJSON **out);

#endif
