/*
 * tmpstore.h - a store in a fresh temporary folder for the memory unit
 * tests: tmpstore_setup/teardown are cmocka fixtures (state is a struct tmp,
 * dir a not yet existing data dir inside root); teardown removes the folder.
 * tmpstore_open and tmpstore_flush fail the running test on error.
 */
#ifndef HEARTH_TESTS_TMPSTORE_H
#define HEARTH_TESTS_TMPSTORE_H

#include "memory/store.h"

struct tmp {
	char root[64];
	char dir[128];
};

int tmpstore_setup(void **state);
int tmpstore_teardown(void **state);
/* Open (create) the store in t->dir, home "home", unsynced. */
hearth_store *tmpstore_open(const struct tmp *t);
/* Flush, and check nothing stays queued. */
void tmpstore_flush(hearth_store *st);

#endif
