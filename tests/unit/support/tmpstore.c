/*
 * tmpstore.c - temporary stores for the memory unit tests (see tmpstore.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "platform/alloc.h"
#include "tests/unit/support/tmpstore.h"

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
tmpstore_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->root, sizeof(t->root), "/tmp/hearth-test-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(t->dir, sizeof(t->dir), "%s/data", t->root);
	*state = t;
	return 0;
}

int
tmpstore_teardown(void **state)
{
	struct tmp *t = *state;

	hearth_alloc_fail_after(-1);
	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

hearth_store *
tmpstore_open(const struct tmp *t)
{
	struct hearth_store_opts o = {.dir = t->dir, .home_id = "home", .no_sync = true};
	hearth_store *st = NULL;
	char why[256];
	int err = hearth_store_open(&o, &st, why, sizeof(why));

	if (err)
		fail_msg("open %s: %d %s", t->dir, err, why);
	return st;
}

void
tmpstore_flush(hearth_store *st)
{
	char why[256];
	int err = hearth_store_flush(st, why, sizeof(why));

	if (err)
		fail_msg("flush: %d %s", err, why);
	assert_int_equal(hearth_store_pending(st), 0);
}
