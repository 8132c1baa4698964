/*
 * fuzz_json.c - libFuzzer target for hearth_json_parse, the parser every
 * untrusted payload (MQTT, CoAP, the config file) goes through. Besides
 * memory errors it checks three properties: a parse never claims to be out
 * of memory when no allocation failed (the strict re-check after a cJSON
 * failure must never accept what cJSON refused), a failure always says why,
 * and whatever parses prints to text that parses again.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     tests/fuzz/fuzz_json.c platform/json.c platform/alloc.c platform/err.c \
 *     -lcjson -lm -o fuzz_json
 */
#include "platform/alloc.h"
#include "platform/err.h"
#include "platform/json.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hearth_alloc_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *root = NULL, *again = NULL;
	char why[96];
	char *text;
	int rc;

	rc = hearth_json_parse(data, size, &root, why, sizeof(why));
	if (rc == HEARTH_E_BAD_JSON) {
		if (root || why[0] == '\0')
			abort();
		return 0;
	}
	if (rc != 0)
		abort(); /* -ENOMEM with no allocation failing is a misclassification */

	text = hearth_json_print(root);
	if (!text)
		abort();
	if (hearth_json_parse(text, strlen(text), &again, NULL, 0) != 0)
		abort();
	/* every value equals itself, whatever its shape */
	if (!hearth_json_value_equal(root, root, 0))
		abort();
	(void)hearth_json_type_name(root);
	hearth_free(text);
	cJSON_Delete(again);
	cJSON_Delete(root);
	return 0;
}
