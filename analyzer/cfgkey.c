/* The one configuration loader and its documentation generators (cfgkey.h). */
#include "cfgkey.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "an_int.h"

#define CK_PATH 160

int ck_fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, len, "config: ");
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < len)
		vsnprintf(err + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

int ck_objects(const void *arr, const char *path, const char *what, int max, ck_obj_fn fn, void *ctx, char *err,
	       size_t len)
{
	const cJSON *a = arr, *o;
	if (!cJSON_IsArray(a))
		return ck_fail(err, len, "%s: expected an array, each %s", path, what);
	int i = 0;
	cJSON_ArrayForEach(o, a)
	{
		char p[96];
		snprintf(p, sizeof p, "%.80s[%d]", path, i);
		if (!cJSON_IsObject(o))
			return ck_fail(err, len, "%s: expected %s", p, what);
		if (i >= max)
			return ck_fail(err, len, "%s: more than %d entries", path, max);
		if (fn(ctx, i, p, o, err, len) != 0)
			return -1;
		i++;
	}
	return 0;
}

int ck_members(const void *obj, const char *path, ck_member_fn fn, void *ctx, char *err, size_t len)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, (const cJSON *)obj)
	{
		const char *k = m->string ? m->string : "";
		char p[200];
		if (k[0] == '_')
			continue;
		snprintf(p, sizeof p, "%.96s.%.80s", path, k);
		if (fn(ctx, k, p, m, err, len) != 0)
			return -1;
	}
	return 0;
}

static void *field(void *base, const struct ck_key *k)
{
	return (char *)base + k->off;
}

/* The key declared for path: exact, else "parent.*". */
static const struct ck_key *find(const struct ck_table *t, int nt, const char *path, void **base)
{
	const char *dot = strrchr(path, '.');
	size_t plen = dot ? (size_t)(dot - path) : 0;
	const struct ck_key *wild = NULL;
	void *wbase = NULL;
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < t[i].n; j++) {
			const char *kp = t[i].keys[j].path;
			if (!strcmp(kp, path)) {
				*base = t[i].base;
				return &t[i].keys[j];
			}
			if (dot && !wild && strlen(kp) == plen + 2 && !strncmp(kp, path, plen) && !strcmp(kp + plen, ".*")) {
				wild = &t[i].keys[j];
				wbase = t[i].base;
			}
		}
	*base = wbase;
	return wild;
}

static int set_int(void *base, const struct ck_key *k, const cJSON *v, const char *path, char *err, size_t len)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)k->lo || v->valuedouble > (double)k->hi ||
	    floor(v->valuedouble) != v->valuedouble) {
		if (k->lo == 1)
			return ck_fail(err, len, "%s: expected a positive integer (at most %lld)", path, (long long)k->hi);
		return ck_fail(err, len, "%s: expected an integer from %lld to %lld", path, (long long)k->lo,
			    (long long)k->hi);
	}
	if (k->size == 8)
		*(int64_t *)field(base, k) = (int64_t)v->valuedouble;
	else
		*(int *)field(base, k) = (int)v->valuedouble;
	return 0;
}

static int set_enum(void *base, const struct ck_key *k, const cJSON *v, const char *path, char *err, size_t len)
{
	for (int i = 0; cJSON_IsString(v) && k->choices[i]; i++)
		if (!strcmp(v->valuestring, k->choices[i])) {
			*(int *)field(base, k) = i;
			return 0;
		}
	char want[256] = "";
	size_t o = 0;
	for (int i = 0; k->choices[i] && o < sizeof want; i++)
		o += (size_t)snprintf(want + o, sizeof want - o, "%s\"%s\"", i == 0 ? "" : k->choices[i + 1] ? ", " : " or ",
				      k->choices[i]);
	return ck_fail(err, len, "%s: expected %s", path, want);
}

static int set_str(void *base, const struct ck_key *k, const cJSON *v, const char *path, char *err, size_t len)
{
	const char *why = NULL;
	if (!cJSON_IsString(v) || !v->valuestring[0] || (k->check && (why = k->check(v->valuestring))))
		return ck_fail(err, len, "%s: %s", path, why ? why : "expected a non-empty string");
	char **dst = field(base, k), *s = strdup(v->valuestring);
	if (!s)
		return ck_fail(err, len, "%s: out of memory", path);
	free(*dst);
	*dst = s;
	return 0;
}

static int set_list(void *base, const struct ck_key *k, const cJSON *v, const cJSON *parent, const char *path,
		    char *err, size_t len)
{
	struct an_strlist *l = field(base, k);
	if (!cJSON_IsArray(v))
		return ck_fail(err, len, "%s: expected an array of strings", path);
	int replace = 1;
	if (k->flags & CK_ADDS) {
		const cJSON *rd = parent ? cJSON_GetObjectItemCaseSensitive(parent, "replace_defaults") : NULL;
		replace = cJSON_IsTrue(rd);
	}
	/* elements checked first, so a refused list leaves the old one in place */
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		const char *why = NULL;
		if (!cJSON_IsString(e) || !e->valuestring[0])
			return ck_fail(err, len, "%s[%d]: expected a non-empty string", path, i);
		if (strlen(e->valuestring) > 255)
			return ck_fail(err, len, "%s[%d]: longer than 255 characters", path, i);
		if (k->check && (why = k->check(e->valuestring)))
			return ck_fail(err, len, "%s[%d]: %s", path, i, why);
		i++;
	}
	if (replace) {
		for (int j = 0; j < l->n; j++)
			free(l->v[j]);
		l->n = 0;
	}
	cJSON_ArrayForEach(e, v)
	{
		char low[256];
		const char *s = e->valuestring;
		if (k->flags & CK_LOWER) {
			size_t j = 0;
			for (; s[j] && j < sizeof low - 1; j++)
				low[j] = (char)((s[j] >= 'A' && s[j] <= 'Z') ? s[j] + 32 : s[j]);
			low[j] = 0;
			s = low;
		}
		if (an_in_list(l, s))
			continue;
		if (l->n >= AN_MAX_LIST)
			return ck_fail(err, len, "%s: more than %d entries", path, AN_MAX_LIST);
		if (!(l->v[l->n] = strdup(s)))
			return ck_fail(err, len, "%s: out of memory", path);
		l->n++;
	}
	return 0;
}

static int walk(const struct ck_table *t, int nt, const cJSON *obj, const char *prefix, char *err, size_t len);

static int apply(const struct ck_table *t, int nt, const struct ck_key *k, void *base, const cJSON *v,
		 const cJSON *parent, const char *path, char *err, size_t len)
{
	int rc = 0;
	switch (k->type) {
	case CK_GROUP:
		if (!cJSON_IsObject(v))
			return ck_fail(err, len, "%s: expected an object", path);
		return walk(t, nt, v, path, err, len);
	case CK_BOOL:
		if (!cJSON_IsBool(v))
			return ck_fail(err, len, "%s: expected true or false", path);
		*(int *)field(base, k) = cJSON_IsTrue(v);
		break;
	case CK_INT:
		rc = set_int(base, k, v, path, err, len);
		break;
	case CK_STR:
		rc = set_str(base, k, v, path, err, len);
		break;
	case CK_ENUM:
		rc = set_enum(base, k, v, path, err, len);
		break;
	case CK_LIST:
		rc = set_list(base, k, v, parent, path, err, len);
		break;
	case CK_CUSTOM:
		return k->set ? k->set(base, k, v, path, err, len) : ck_fail(err, len, "%s: not settable", path);
	}
	if (rc == 0 && k->set)
		rc = k->set(base, k, v, path, err, len);
	return rc;
}

static int walk(const struct ck_table *t, int nt, const cJSON *obj, const char *prefix, char *err, size_t len)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, obj)
	{
		const char *name = e->string ? e->string : "";
		char path[CK_PATH];
		if (name[0] == '_') /* a comment, as everywhere in the file */
			continue;
		if (prefix)
			snprintf(path, sizeof path, "%s.%.80s", prefix, name);
		else
			snprintf(path, sizeof path, "%.80s", name);
		void *base = NULL;
		const struct ck_key *k = find(t, nt, path, &base);
		if (!k)
			return ck_fail(err, len, "%s: unknown key", path);
		if (apply(t, nt, k, base, e, obj, path, err, len))
			return -1;
	}
	return 0;
}

int ck_load(const struct ck_table *t, int nt, const void *root, char *err, size_t errlen)
{
	if (!cJSON_IsObject((const cJSON *)root))
		return ck_fail(err, errlen, "expected a JSON object at the top level");
	return walk(t, nt, root, NULL, err, errlen);
}

int ck_set(const struct ck_table *t, int nt, const char *path, const void *v, char *err, size_t errlen)
{
	void *base = NULL;
	const struct ck_key *k = find(t, nt, path, &base);
	if (!k)
		return 1;
	return apply(t, nt, k, base, v, NULL, path, err, errlen) ? -1 : 0;
}

int ck_apply(const struct ck_key *k, void *base, const void *v, const char *path, char *err, size_t errlen)
{
	return apply(NULL, 0, k, base, v, NULL, path, err, errlen) ? -1 : 0;
}

const char *ck_check_cidr(const char *s)
{
	char buf[64];
	unsigned char a[16];
	const char *bad = "expected an IP address or CIDR";
	if (strlen(s) >= sizeof buf)
		return bad;
	strcpy(buf, s);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		char *endp;
		*slash = 0;
		bits = strtol(slash + 1, &endp, 10);
		if (*endp || slash[1] == 0 || bits < 0)
			return bad;
	}
	if (inet_pton(AF_INET, buf, a) == 1)
		return bits <= 32 ? NULL : bad;
	if (inet_pton(AF_INET6, buf, a) == 1)
		return bits <= 128 ? NULL : bad;
	return bad;
}

/* ---- documentation ---- */

/* The value in base, as JSON (NULL: nothing to show). */
static cJSON *shown(const struct ck_key *k, const void *base)
{
	const char *f = (const char *)base + k->off;
	switch (k->type) {
	case CK_GROUP:
		return cJSON_CreateObject();
	case CK_BOOL:
		return cJSON_CreateBool(*(const int *)f);
	case CK_INT:
		return cJSON_CreateNumber(k->size == 8 ? (double)*(const int64_t *)f : *(const int *)f);
	case CK_STR: {
		const char *s = *(char *const *)f;
		return s ? cJSON_CreateString(s) : NULL;
	}
	case CK_ENUM:
		return cJSON_CreateString(k->choices[*(const int *)f]);
	case CK_LIST: {
		const struct an_strlist *l = (const struct an_strlist *)f;
		cJSON *a = cJSON_CreateArray();
		for (int i = 0; i < l->n; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
		return a;
	}
	case CK_CUSTOM:
		return k->show ? k->show(base, k) : NULL;
	}
	return NULL;
}

/* The object at path's parent inside root, made along the way. */
static cJSON *parent_of(cJSON *root, const char *path, const char **leaf)
{
	cJSON *o = root;
	const char *p = path, *dot;
	while ((dot = strchr(p, '.'))) {
		char seg[CK_PATH];
		snprintf(seg, sizeof seg, "%.*s", (int)(dot - p), p);
		cJSON *c = cJSON_GetObjectItemCaseSensitive(o, seg);
		if (!c)
			c = cJSON_AddObjectToObject(o, seg);
		o = c;
		p = dot + 1;
	}
	*leaf = p;
	return o;
}

static void doc_text(const struct ck_key *k, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "%s", k->doc ? k->doc : "");
	if (k->example && o < cap) {
		if (k->def)
			snprintf(out + o, cap - o, " Default: %s; the value below is an example.", k->def);
		else
			snprintf(out + o, cap - o, " The value below is an example.");
	} else if (k->def && o < cap) {
		snprintf(out + o, cap - o, " Default: %s.", k->def);
	}
}

/* Objects one member per line, two-space indent; everything else on one line. A blank line
 * before each top-level comment separates the sections. */
static void print_object(FILE *f, const cJSON *o, int depth)
{
	fputs("{\n", f);
	for (const cJSON *m = o->child; m; m = m->next) {
		if (depth == 0 && m != o->child && m->string[0] == '_')
			fputc('\n', f);
		char *name = cJSON_PrintUnformatted(&(cJSON){ .type = cJSON_String, .valuestring = m->string });
		fprintf(f, "%*s%s: ", 2 * (depth + 1), "", name ? name : "\"\"");
		free(name);
		if (cJSON_IsObject(m) && m->child) {
			print_object(f, m, depth + 1);
		} else {
			char *v = cJSON_PrintUnformatted(m);
			if (v) {
				/* ["a","b"] reads better as ["a", "b"], {"k":1} as {"k": 1} */
				for (char *c = v, in = 0; *c; c++) {
					fputc(*c, f);
					if (*c == '"' && (c == v || c[-1] != '\\'))
						in = !in;
					if ((*c == ',' || *c == ':') && !in)
						fputc(' ', f);
				}
			}
			free(v);
		}
		fputs(m->next ? ",\n" : "\n", f);
	}
	fprintf(f, "%*s}", 2 * depth, "");
}

void ck_write_example(FILE *f, const struct ck_table *t, int nt, const char *intro)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "_comment", intro);
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < t[i].n; j++) {
			const struct ck_key *k = &t[i].keys[j];
			const char *leaf;
			cJSON *par = parent_of(root, k->path, &leaf);
			char doc[2048], cname[CK_PATH];
			doc_text(k, doc, sizeof doc);
			if (strcmp(leaf, "*") == 0) {
				/* members of a map: the group's defaults, one per member */
				if (doc[0] && !cJSON_GetObjectItemCaseSensitive(par, "_comment"))
					cJSON_AddStringToObject(par, "_comment", doc);
				cJSON *v = k->example ? cJSON_Parse(k->example) : shown(k, t[i].base), *m;
				while (v && (m = v->child)) {
					cJSON_DetachItemViaPointer(v, m);
					cJSON_AddItemToObject(par, m->string, m);
				}
				cJSON_Delete(v);
				continue;
			}
			snprintf(cname, sizeof cname, "_%s", leaf);
			if (doc[0])
				cJSON_AddStringToObject(par, cname, doc);
			cJSON *v = k->example ? cJSON_Parse(k->example) : shown(k, t[i].base);
			if (v && !cJSON_GetObjectItemCaseSensitive(par, leaf))
				cJSON_AddItemToObject(par, leaf, v);
			else
				cJSON_Delete(v);
		}
	print_object(f, root, 0);
	fputc('\n', f);
	cJSON_Delete(root);
}

/* roff-safe text: backslashes escaped, no line starting with a control character */
static void roff(FILE *f, const char *s)
{
	int bol = 1;
	for (; *s; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		bol = 0;
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
		if (*s == '\n')
			bol = 1;
	}
}

void ck_write_man(FILE *f, const struct ck_table *t, int nt)
{
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < t[i].n; j++) {
			const struct ck_key *k = &t[i].keys[j];
			char what[300] = "";
			switch (k->type) {
			case CK_GROUP:
				snprintf(what, sizeof what, "object");
				break;
			case CK_BOOL:
				snprintf(what, sizeof what, "true or false");
				break;
			case CK_INT:
				snprintf(what, sizeof what, "integer %lld to %lld", (long long)k->lo, (long long)k->hi);
				break;
			case CK_STR:
				snprintf(what, sizeof what, "string");
				break;
			case CK_ENUM: {
				size_t o = (size_t)snprintf(what, sizeof what, "one of");
				for (int c = 0; k->choices[c] && o < sizeof what; c++)
					o += (size_t)snprintf(what + o, sizeof what - o, "%s %s", c ? "," : "", k->choices[c]);
				break;
			}
			case CK_LIST:
				snprintf(what, sizeof what, "array of strings");
				break;
			case CK_CUSTOM:
				break;
			}
			fputs(".TP\n.B ", f);
			roff(f, k->path);
			fputc('\n', f);
			char def[512] = "";
			if (k->def) {
				snprintf(def, sizeof def, "%s", k->def);
			} else if (k->type != CK_GROUP) {
				cJSON *v = shown(k, t[i].base);
				char *s = v ? cJSON_PrintUnformatted(v) : NULL;
				if (s && strcmp(s, "[]") && strcmp(s, "{}"))
					snprintf(def, sizeof def, "%s", s);
				free(s);
				cJSON_Delete(v);
			}
			if (what[0] || def[0]) {
				fputc('(', f);
				roff(f, what);
				if (def[0]) {
					fputs(what[0] ? "; default " : "default ", f);
					roff(f, def);
				}
				fputs(")\n", f);
			}
			if (k->doc) {
				roff(f, k->doc);
				fputc('\n', f);
			}
		}
}
