/* One configuration vocabulary: each module declares its keys in a table (JSON path, type,
 * bounds, default, documentation) and one loader validates a whole file against all the
 * tables, with errors that name the JSON path. The example configuration and the man
 * page's key list are generated from the same tables (tests/capture/test_config_docs.c
 * fails when the committed files differ).
 *
 * Lives in analyzer/ because both the analyzer and the application above it declare keys,
 * and data flows one way: capture/app may include analyzer headers, not the reverse. */
#ifndef DBTAP_CFGKEY_H
#define DBTAP_CFGKEY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ck_type {
	CK_GROUP,  /* an object holding other keys; the loader recurses into it */
	CK_BOOL,   /* int 0/1 */
	CK_INT,    /* int (size 4) or int64_t (size 8) within [lo, hi] */
	CK_STR,    /* char * (strdup), non-empty */
	CK_ENUM,   /* int: index of the value in choices */
	CK_LIST,   /* struct an_strlist of non-empty strings */
	CK_CUSTOM, /* set() does everything */
};

#define CK_LOWER 1u /* CK_LIST: values folded to lower case */
#define CK_ADDS 2u  /* CK_LIST: adds to the defaults unless the group's replace_defaults is true */

struct ck_key;
/* 0, or -1 with "config: PATH: reason" in err. v is a cJSON item. */
typedef int (*ck_set_fn)(void *base, const struct ck_key *k, const void *v, const char *path, char *err,
			 size_t errlen);
/* The value now in base, as a new cJSON item (for the generated documentation). */
typedef void *(*ck_show_fn)(const void *base, const struct ck_key *k);

struct ck_key {
	const char *path; /* "capture.max_flows"; "severities.*": any member the set() accepts */
	enum ck_type type;
	size_t off;  /* offset of the field in the table's struct */
	int size;    /* CK_INT: sizeof the field (4 or 8) */
	int64_t lo, hi;
	const char *const *choices; /* CK_ENUM, NULL-terminated */
	unsigned flags;
	/* CK_LIST / CK_STR: NULL or the reason an element is refused ("expected ...") */
	const char *(*check)(const char *s);
	ck_set_fn set;	 /* CK_CUSTOM; for other types an extra step after the value is stored */
	ck_show_fn show; /* CK_CUSTOM: how the default is documented */
	/* Defaults live in the module's *_defaults() function; the documentation reads them
	 * from a base holding defaults. def: text shown instead, where the value cannot say it
	 * ("on with more than one CPU", "none"). */
	const char *def;
	const char *example; /* JSON text shown in the example file instead of the default */
	const char *doc;
};

struct ck_table {
	const struct ck_key *keys;
	int n;
	void *base; /* the struct the offsets point into */
};

/* Validate and apply a parsed JSON document (a cJSON object) against the tables. Keys
 * starting with '_' are comments, everywhere. 0, or -1 with a one-line message. */
int ck_load(const struct ck_table *t, int nt, const void *root, char *err, size_t errlen);

/* Apply one key (a path such as "baseline" or "thresholds.bulk_read_rows") to its value:
 * 0 applied, 1 no such key in the tables, -1 refused (message in err). */
int ck_set(const struct ck_table *t, int nt, const char *path, const void *v, char *err, size_t errlen);

/* Apply the given key to v under path (for values inside CK_CUSTOM ones). 0 or -1. */
int ck_apply(const struct ck_key *k, void *base, const void *v, const char *path, char *err, size_t errlen);

/* The documented example configuration (JSON) and the man page's key list (roff), with the
 * default values read from tables whose bases hold defaults. */
void ck_write_example(FILE *f, const struct ck_table *t, int nt, const char *intro);
void ck_write_man(FILE *f, const struct ck_table *t, int nt);

/* "config: " and the message into err; returns -1. */
int ck_fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* An array of objects (sensitive[], poolers[], host_os_policy[]) under path: fn(ctx, i,
 * "path[i]", element) for each, after checking it is an object (what: how the error names
 * one, e.g. "an object"), at most max of them. 0 or -1 with a message. */
typedef int (*ck_obj_fn)(void *ctx, int i, const char *path, const void *obj, char *err, size_t len);
int ck_objects(const void *arr, const char *path, const char *what, int max, ck_obj_fn fn, void *ctx, char *err,
	       size_t len);
/* The members of an object under path, comments ('_') skipped: fn(ctx, name, "path.name",
 * value) for each; an unknown name is fn's to refuse. 0 or -1. */
typedef int (*ck_member_fn)(void *ctx, const char *name, const char *path, const void *v, char *err, size_t len);
int ck_members(const void *obj, const char *path, ck_member_fn fn, void *ctx, char *err, size_t len);

/* Shared element checks for CK_LIST / CK_STR. */
const char *ck_check_cidr(const char *s); /* IPv4 or IPv6 address or CIDR */

#endif
