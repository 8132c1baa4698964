/*
 * secrets.h - named byte blobs in the `secrets` database (DESIGN.md section
 * 3): paired phone keys, the audit checkpoint key.
 *
 * The store's files are created with mode 0600 in a 0700 data dir, so only
 * hearth's user can read them. Values are never logged and never listed:
 * listing gives names only, and a value is only copied into a buffer the
 * caller owns (and should wipe when done). Writes are queued like every
 * write and commit with the loop turn; reads see what is committed. A name
 * is 1..128 bytes of printable ASCII without spaces, a value 1..4096 bytes.
 */
#ifndef HEARTH_MEMORY_SECRETS_H
#define HEARTH_MEMORY_SECRETS_H

#include "memory/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTH_SECRET_NAME_MAX  128
#define HEARTH_SECRET_VALUE_MAX 4096

/*
 * Queue storing len bytes of val under name (replacing any value). 0,
 * HEARTH_E_INVALID, HEARTH_E_TOO_LARGE, -ENOMEM or -EROFS; nothing is queued
 * on error.
 */
int hearth_secret_put(hearth_store *st, const char *name, const void *val, size_t len);
/*
 * Copy the committed value of name into buf (cap bytes) and its length into
 * *len. HEARTH_E_NOT_FOUND when there is none; HEARTH_E_TOO_LARGE when cap is
 * too small (*len then says how much is needed, and buf is untouched).
 */
int hearth_secret_get(hearth_store *st, const char *name, void *buf, size_t cap, size_t *len);
/* Queue removing name (a name that is not there is no error). */
int hearth_secret_del(hearth_store *st, const char *name);

/* Visit the committed names in order; a non-zero return stops (a negative one is passed back). */
typedef int (*hearth_secret_name_fn)(void *ud, const char *name);
int hearth_secrets_each(hearth_store *st, hearth_secret_name_fn fn, void *ud);

/* ==== Approvers (paired phones) ====
 *
 * A paired phone's key is the secret "approver.<name>": 32 random bytes
 * followed by the pairing time (ms since the epoch, 8 bytes little-endian).
 * name is an id (DESIGN.md section 4: 1-64 of [A-Za-z0-9_.-]). The key is
 * what HMAC-SHA256 approval responses are signed with (DESIGN.md section 4,
 * approvals); it leaves this module only into a buffer the caller owns.
 */
#define HEARTH_APPROVER_KEY_LEN 32
#define HEARTH_APPROVER_PREFIX  "approver."

/*
 * Queue pairing name with key at paired_at, replacing a key it had. Makes
 * the store's files 0600 if they were not (a warning is logged). 0,
 * HEARTH_E_INVALID (name not an id), -ENOMEM or -EROFS.
 */
int hearth_secrets_approver_put(hearth_store *st, const char *name,
                                const uint8_t key[HEARTH_APPROVER_KEY_LEN], int64_t paired_at);
/*
 * The committed key of approver name into key. 0; HEARTH_E_NOT_FOUND when
 * name is not paired; HEARTH_E_INVALID when name is not an id;
 * HEARTH_E_CORRUPT when the stored value is not a key and a time. key is
 * untouched on error.
 */
int hearth_secrets_approver_key(hearth_store *st, const char *name,
                                uint8_t key[HEARTH_APPROVER_KEY_LEN]);
/* When name was paired (committed), in *paired_at. Errors as above. */
int hearth_secrets_approver_paired_at(hearth_store *st, const char *name, int64_t *paired_at);
/* Queue unpairing name. 0; HEARTH_E_NOT_FOUND when it is not paired. */
int hearth_secrets_approver_del(hearth_store *st, const char *name);

/* Visit the committed approvers by name: name and pairing time, never the key. */
typedef int (*hearth_approver_fn)(void *ud, const char *name, int64_t paired_at);
int hearth_secrets_approvers_each(hearth_store *st, hearth_approver_fn fn, void *ud);

/*
 * Pairing as hearthctl pair does it (through hearthd, or on the store): a new
 * 256-bit key from the OS random source for name, its hex into hex (the
 * caller wipes it), *rotated when name had a key (only with rotate:
 * HEARTH_E_BUSY when name is paired and rotate is false), and the audit
 * record approver.paired {"approver","rotated","by"} with the name only.
 * unpair: HEARTH_E_NOT_FOUND when name is not paired, else the key goes and
 * approver.unpaired is audited. Both queue their writes (commit with the
 * turn, or hearth_store_flush).
 */
int hearth_approver_pair(hearth_store *st, const char *name, bool rotate, int64_t now,
                         char hex[2 * HEARTH_APPROVER_KEY_LEN + 1], bool *rotated);
int hearth_approver_unpair(hearth_store *st, const char *name, int64_t now);
/* [{"approver","paired_at"}] of the committed approvers, never a key. */
int hearth_approvers_list(hearth_store *st, cJSON **out);

#endif
