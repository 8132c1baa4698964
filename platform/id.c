/*
 * id.c - validation of protocol ids; see id.h.
 */
#include "platform/id.h"

#include <string.h>

bool
hearth_id_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > HEARTH_ID_LEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool
hearth_id_valid_str(const char *s)
{
	return s && hearth_id_valid(s, strlen(s));
}
