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
 */
#ifndef HEARTH_MEMORY_AUDIT_H
#define HEARTH_MEMORY_AUDIT_H

#include "memory/store.h"

#include <stdint.h>
#include <stdio.h>

/* Queue a record. kind and subject are short words ("plan.completed",
 * "p-123"); detail is a JSON object text or NULL. 0 or a negative error. */
int hearth_audit_append(hearth_store *st, int64_t ts_ms, const char *kind, const char *subject,
			const char *detail_json);

struct hearth_audit_report {
	uint64_t first_seq;   /* first record present (after the checkpoint) */
	uint64_t last_seq;    /* last record present; 0 when the chain is empty */
	uint64_t records;
	uint64_t bad_seq;     /* first bad sequence number, 0 when all is well */
	char why[256];        /* what is wrong with bad_seq, for a person */
};

/* Verify the whole chain (and the checkpoint). Returns 0 when it verifies,
 * HEARTH_E_CORRUPT with bad_seq and why filled when it does not, or another
 * negative error when the store cannot be read. */
int hearth_audit_verify(hearth_store *st, struct hearth_audit_report *out);

/* Write every record as one JSON line to f, oldest first (plain, unsealed).
 * Returns the number of records written, or a negative error. */
long hearth_audit_export(hearth_store *st, FILE *f);

/* Prune records older than keep_ms (wall ms before now_ms) but keep at least
 * keep_min records; writes a signed checkpoint. Queued like an append. */
int hearth_audit_retain(hearth_store *st, int64_t now_ms, int64_t keep_ms, uint64_t keep_min);

#endif
