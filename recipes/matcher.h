/*
 * matcher.h - text intents: sentence templates compiled once into a matcher
 * that turns "movie night in the bedroom" into an intent and its slots.
 *
 * Template syntax: literal words; alternatives "(a|b c|d)"; optional parts
 * "[..]" (both may nest, "[a|b]" is an optional alternative); slots
 * "{name}", typed by the recipe's slot of that name (room, number, percent,
 * temperature, string; an undeclared slot is a string). A slot the recipe
 * does not require may be left out of the utterance ("dim the lights [in
 * the] {room}" also matches "dim the lights"); a required one may not.
 *
 * Templates and utterances are normalized alike: lowercase, punctuation
 * dropped ('%' reads "percent", '°' reads "degrees"), filler words dropped
 * ("please", "hey", "hearth", "the", "a", "to", "can you", "for me", ...).
 * A match must cover the whole normalized utterance.
 *
 * Slot values: room: a name from the room list (its canonical name) or,
 * through the room callback, the room key of the words said (hearth_room_key
 * form); a trailing "room" after a room name is part of the slot ("the
 * living room" is "living" when "living" is a room). number, percent (0-100)
 * and temperature: digits ("21.5") or number words ("twenty one"), percent
 * with an optional "percent"/"%", temperature with optional
 * "degrees"/"°"/"celsius". string: one word.
 */
#ifndef HEARTH_RECIPES_MATCHER_H
#define HEARTH_RECIPES_MATCHER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "recipes/recipe.h"

typedef struct hearth_matcher hearth_matcher;

/* Is room (a key: lowercase, '_' between words) a room of this home? */
typedef bool (*hearth_matcher_room_fn)(void *ud, const char *room_key);

struct hearth_match {
	const char *intent; /* owned by the matcher */
	const void *tag;    /* what the template was added with */
	cJSON *slots;       /* an object; the caller frees it */
	double score; /* 0..1: how much of the utterance literal words and typed slots cover */
	int literals; /* literal words matched */
	int template_index; /* in the order added */
};

int hearth_matcher_new(hearth_matcher **out);
void hearth_matcher_free(hearth_matcher *m);

/*
 * Compile one template for intent. Slot types come from slots[0..nslots)
 * (may be NULL). tag is handed back in matches. On a syntax error returns
 * HEARTH_E_INVALID with the reason in why.
 */
int hearth_matcher_add(hearth_matcher *m, const char *intent, const char *tmpl,
                       const struct hearth_recipe_slot *slots, int nslots, const void *tag,
                       char *why, size_t why_len);

/*
 * Every sentence of every recipe in book, each for the recipe's first intent
 * and tagged with the recipe. A template that does not compile is skipped
 * and reported through report(ud, line) (may be NULL). Returns 0 or -ENOMEM.
 */
int hearth_matcher_add_book(hearth_matcher *m, const hearth_recipe_book *book,
                            void (*report)(void *ud, const char *line), void *ud);

/* A room name said as name (e.g. "living room"), reported as canonical
 * (NULL: name itself). */
int hearth_matcher_add_room(hearth_matcher *m, const char *name, const char *canonical);
/* Rooms also known through fn (tried after the list). */
void hearth_matcher_set_room_fn(hearth_matcher *m, hearth_matcher_room_fn fn, void *ud);

int hearth_matcher_count(const hearth_matcher *m);

/*
 * The best match for text: returns 0 and fills *out (free out->slots with
 * cJSON_Delete), HEARTH_E_NOT_FOUND when no template covers the whole
 * utterance, or -ENOMEM. Best: highest score, then most literal words, then
 * the template added first.
 */
int hearth_matcher_match(const hearth_matcher *m, const char *text, struct hearth_match *out);

/* The normalized words of text joined by spaces (for messages and tests). */
void hearth_matcher_normalize(const char *text, char *out, size_t len);

#endif
