/*
 * audit.h - the audit chain: an append-only, tamper-evident record of what
 * the hub did (DESIGN.md sections 3 and 5).
 *
 * A record is {seq, ts, kind, subject, detail, prev_hash, hash}: seq counts
 * from 1 with no gaps, prev_hash is the hash of the record before (64 zeros
 * for the first, or the checkpoint's last hash after retention), and hash is
 * SHA-256 over the canonical text of the record without its hash. Appends are
 * queued and hashed inside the flush transaction against the record actually
 * before them, so a dropped flush can never leave a gap or a fork.
 *
 * Retention prunes the oldest records and keeps a checkpoint {upto_seq,
 * last_hash, ts, mac}: mac is HMAC-SHA256 under a key kept in the secrets
 * database, so the pruned prefix cannot be forged either. With
 * CONFIG_HEARTH_AUDIT_SEAL and a key file, records are sealed at rest with
 * AES-256-GCM (the hash is over the plain record).
 *
 * Canonical text. The hash covers exactly these bytes (no whitespace):
 *
 *   {"seq":S,"ts":T,"kind":K,"subject":U,"detail":D,"prev_hash":"P"}
 *
 * S and T are decimal integers (no sign for S, "-" for a negative T, no
 * leading zeros); K and U are JSON strings; P is 64 lowercase hex digits. A
 * string is written byte for byte between quotes, except '"' and '\' (as \"
 * and \\), \b \f \n \r \t, and the other bytes below 0x20 as \u00xx (lowercase
 * hex); bytes from 0x7f up are written as they are (UTF-8). D is the detail
 * object written canonically: object members sorted by key (byte order,
 * members with equal keys in their original order), arrays in order, no
 * whitespace, true/false/null, strings as above, numbers as "0" for zero, as
 * "%.0f" for whole numbers of magnitude below 2^53, otherwise as the first of
 * "%.15g", "%.16g", "%.17g" that reads back as the same double. A NULL detail
 * is {}. This form is a fixed point: parsing it and writing it again gives
 * the same bytes, which is how verify recomputes a hash from a stored record.
 *
 * Stored form. Database `audit`, key = seq as 8 bytes big-endian, value = the
 * record: the canonical text with ,"hash":"H"} in place of its closing brace
 * (H: 64 lowercase hex digits). A sealed value is instead 0x01 | nonce (12
 * random bytes) | AES-256-GCM ciphertext of the record | tag (16 bytes), with
 * the 8-byte key as additional authenticated data (so a sealed value moved to
 * another key does not open). The leading 0x01 (a plain record starts with
 * '{') lets plain and sealed records live side by side, and lets a reader
 * without the key say "sealed" rather than "garbage".
 *
 * Anchors, in the `meta` database (plain JSON, a MAC under the 32-byte key
 * stored in `secrets` as "audit.checkpoint_key", made from the OS random
 * source in the first transaction that needs it):
 *   "audit_checkpoint" {"anchor":"audit.checkpoint","upto_seq":N,
 *                       "last_hash":"H","ts":T,"mac":"M"}
 *       written by retention: records 1..N were pruned, N's hash was H.
 *   "audit_head"       {"anchor":"audit.head","last_seq":N,"last_hash":"H",
 *                       "broken":B,"mac":"M"}
 *       rewritten by every append: the chain ends at N with hash H, so
 *       records deleted from the end (which leave no gap) are detected too.
 *       B is 0, or the first record the head did not vouch for when an
 *       append found it missing, altered (MAC) or behind the records: the
 *       chain then goes on from the last record, and B is carried forward
 *       in every later head, so appending cannot launder a tampered end.
 *       An append trusts a valid head even when records are missing
 *       before it: it goes on after the head, and the gap stays visible.
 * M is HMAC-SHA256 over the anchor's text without ,"mac":"M" (i.e. ending in
 * }), under that key. The anchors are never sealed (they hold no detail).
 *
 * Sealing keys are per store and live in memory only (set by
 * hearth_audit_set_seal_key). The table holding them has room for 4 open
 * stores and is not thread-safe: call hearth_audit_forget() before closing a
 * store that had a key.
 */
#ifndef HEARTH_MEMORY_AUDIT_H
#define HEARTH_MEMORY_AUDIT_H

#include "memory/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define HEARTH_AUDIT_KEY_LEN 32

/* Queue a record. kind and subject are short words ("plan.completed",
 * "p-123"); detail is a JSON object text or NULL. 0 or a negative error:
 * HEARTH_E_INVALID (kind not 1-64 of [A-Za-z0-9._:-], subject over 256 bytes,
 * not UTF-8 or with control characters, ts negative, detail not an object or
 * with a number out of range), HEARTH_E_BAD_JSON, HEARTH_E_TOO_LARGE (detail
 * over CONFIG_HEARTH_AUDIT_DETAIL_MAX bytes in canonical form), -ENOMEM,
 * -EROFS on a read-only store. */
int hearth_audit_append(hearth_store *st, int64_t ts_ms, const char *kind, const char *subject,
                        const char *detail_json);

struct hearth_audit_report {
	uint64_t first_seq; /* first record present (after the checkpoint) */
	uint64_t last_seq;  /* last record present; 0 when the chain is empty */
	uint64_t records;
	uint64_t bad_seq;     /* first bad sequence number, 0 when all is well */
	char why[256];        /* what is wrong with bad_seq, for a person */
	uint64_t pruned_upto; /* records 1..pruned_upto were pruned (checkpoint); 0: none */
	uint64_t sealed;      /* how many of the records are sealed */
};

/* Verify the whole chain (and the checkpoint). Returns 0 when it verifies,
 * HEARTH_E_CORRUPT with bad_seq and why filled when it does not, or another
 * negative error when the store cannot be read. A sealed record and no seal
 * key set for st gives HEARTH_E_CONFIG with why filled (bad_seq stays 0).
 * The checks, in chain order: the checkpoint is readable and its MAC holds;
 * every key is 8 bytes and the sequence has no gap (a deleted record) and
 * nothing at or before the checkpoint (an inserted one); a sealed record
 * opens; the record reads, its hash matches its content and it is in
 * canonical form (an edited one); its seq is its key's (a reordered one);
 * its prev_hash is the hash before it (an inserted or replaced one); then
 * the head: present, MAC holds, and it names the last record and its hash
 * (records deleted from or added at the end), never marked broken. The
 * first failure is reported. Works on a read-only store beside hearthd. */
int hearth_audit_verify(hearth_store *st, struct hearth_audit_report *out);

/* Write every record as one JSON line to f, oldest first (plain, unsealed),
 * exactly the stored record (its canonical form with the hash). The
 * checkpoint and head are not written. Returns the number of records
 * written, or a negative error: HEARTH_E_CONFIG when a record is sealed and
 * st has no seal key, HEARTH_E_CORRUPT when a record does not open or is not
 * JSON (the lines before it are written: run verify), -EIO when f fails. */
long hearth_audit_export(hearth_store *st, FILE *f);

/* Prune records older than keep_ms (wall ms before now_ms) but keep at least
 * keep_min records; writes a signed checkpoint. Queued like an append.
 * Only a prefix is pruned: it stops at the first record young enough, and at
 * the first record that does not verify (or does not open for want of the
 * seal key), so a broken record is never hidden under a signed checkpoint
 * (that is logged, the flush still succeeds). 0, HEARTH_E_INVALID (negative
 * now_ms or keep_ms), -ENOMEM or -EROFS. */
int hearth_audit_retain(hearth_store *st, int64_t now_ms, int64_t keep_ms, uint64_t keep_min);

/*
 * Seal records appended to st from now on with key (AES-256-GCM; key copied),
 * and open sealed records with it in verify, export and retention. NULL
 * clears the key (appends are plain again). Records already stored keep
 * their form. 0, HEARTH_E_INVALID (st NULL) or HEARTH_E_FULL when 4 stores
 * hold keys already. The daemon loads key with hearth_audit_load_key from
 * its key file at start; with CONFIG_HEARTH_AUDIT_SEAL it must refuse to
 * start without one (see hearth_audit_seal_required).
 */
int hearth_audit_set_seal_key(hearth_store *st, const uint8_t key[HEARTH_AUDIT_KEY_LEN]);

/* Drop what this module keeps for st (its seal key, wiped). Call before
 * hearth_store_close(st). NULL or an unknown store is fine. */
void hearth_audit_forget(hearth_store *st);

/*
 * Read a seal key file: 64 hex digits (trailing whitespace allowed) or
 * exactly 32 raw bytes. The file must be a regular file that neither group
 * nor others can read. 0, or HEARTH_E_CONFIG / a negated errno with a
 * reason in why ("key file /etc/hearth/audit.key is readable by other users:
 * chmod 600 it").
 */
int hearth_audit_load_key(const char *path, uint8_t key[HEARTH_AUDIT_KEY_LEN], char *why,
                          size_t why_len);

/* true when this build was configured with CONFIG_HEARTH_AUDIT_SEAL: the
 * daemon must then have a seal key before it appends. */
bool hearth_audit_seal_required(void);

#endif
