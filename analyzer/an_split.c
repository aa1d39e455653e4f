/* Splitting a simple query into its statements, in the session's reading and, where a
 * setting that changes lexing is not known, the other reading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"

/* Split sql[0..len) read with lexer mode `mode` into out (offsets into sql), each part's
 * mode into omode. The whole text is split, past the token cap too: lexing resumes after the
 * last token (a statement longer than the cap ends there: the safe side, more statements
 * seen, never fewer). MySQL parses each statement after running the previous one, so a
 * SET sql_mode changes how the rest is read. *single: one pass covered everything, an->toks
 * hold its tokens. */
static int split_pass(struct an *an, struct an_session *s, const char *sql, size_t len, unsigned mode,
		      struct sn_range *out, uint8_t *omode, int *single, int *ntok)
{
	int np = 0, cont = 0;
	size_t off = 0;
	*single = 1;
	while (off < len && np < AN_MAX_PARTS) {
		int tr = 0, more = 0;
		int n = sn_lex_mode(sql + off, len - off, s->dialect, mode, an->toks, SN_MAX_TOKENS, &tr);
		int k = sn_split(sql + off, an->toks, n, out + np, AN_MAX_PARTS - np, &more);
		*ntok = n;
		if (cont && k > 0 && out[np].tok_first == 0) {
			/* the statement cut at the token cap goes on up to the first ';' */
			out[np - 1].len = (uint32_t)(off + out[np].off + out[np].len - out[np - 1].off);
			memmove(out + np, out + np + 1, (size_t)(k - 1) * sizeof *out);
			k--;
			cont = 0;
			if (k == 0 && tr) {
				const struct sn_tok *z = &an->toks[n - 1];
				out[np - 1].len = (uint32_t)(off + z->off + z->len - out[np - 1].off);
				cont = 1;
				*single = 0;
				off += z->off + z->len;
				continue;
			}
		}
		cont = 0;
		size_t next = len;
		if (tr && n > 0) {
			const struct sn_tok *z = &an->toks[n - 1];
			next = off + z->off + z->len; /* where lexing stopped */
			if (k > 1 && !more) {
				k--; /* the last part may go on: lex it again from its start */
				next = off + out[np + k].off;
			} else if (k >= 1) {
				struct sn_range *r = &out[np + k - 1];
				r->len = z->off + z->len - r->off;
				cont = !more;
			}
		}
		for (int i = 0; i < k; i++) {
			out[np + i].off += (uint32_t)off;
			omode[np + i] = (uint8_t)mode;
		}
		if (s->dialect == SN_MYSQL) {
			for (int i = 0; i < k; i++) {
				unsigned m = mode;
				const struct sn_range *r = &out[np + i];
				if (!(i + 1 < k || next < len) || sn_sets_sql_mode(sql + off, an->toks, r->tok_first,
										   r->tok_end, &m) != 1 || m == mode)
					continue;
				mode = m; /* read the rest again */
				k = i + 1;
				next = r->off + r->len;
				break;
			}
		}
		np += k;
		if (next <= off || more || next >= len)
			break;
		*single = 0;
		off = next;
	}
	return np;
}

/* The parts of a simple query into an->parts / an->part_mode: the session's reading, and
 * where a setting that changes lexing is not known (the server's initial sql_mode, a
 * standard_conforming_strings not yet reported) the other reading's parts that differ,
 * marked AN_PART_ALT: a statement the server may run is never lost to our guess. */
int an_split_reading(struct an *an, struct an_session *s, const char *sql, size_t len, int *single, int *ntok)
{
	int n_alt = 0, alt_single, n_run[2] = { 0, 0 };
	unsigned mode = s->lexmode, unk = s->lexmode_unknown;
	static const unsigned bits[] = { SN_M_BACKSLASH, SN_M_ANSI_QUOTES };
	for (size_t b = 0; b < 2; b++) {
		if (!(unk & bits[b]) || (bits[b] == SN_M_ANSI_QUOTES && s->dialect != SN_MYSQL) ||
		    !memchr(sql, bits[b] == SN_M_BACKSLASH ? '\\' : '"', len))
			continue;
		int k = split_pass(an, s, sql, len, mode ^ bits[b], an->parts, an->part_mode, &alt_single, ntok);
		for (int i = 0; i < k && n_alt < AN_MAX_PARTS; i++) {
			an->alt_parts[n_alt] = an->parts[i];
			an->alt_mode[n_alt++] = an->part_mode[i];
			n_run[b]++;
		}
	}
	int np = split_pass(an, s, sql, len, mode, an->parts, an->part_mode, single, ntok);
	/* A statement of the other reading that starts where none of ours does: the server may
	 * run it. Each list runs in text order, so merge walks find them (the parts appended
	 * from the first reading are walked too, so that both readings add it once). */
	int np0 = np, i = 0;
	for (int r = 0; r < 2; r++) {
		int j = 0, np1 = np, j1 = np0;
		for (int e = i + n_run[r]; i < e; i++) {
			const struct sn_range *a = &an->alt_parts[i];
			while (j < np0 && an->parts[j].off < a->off)
				j++;
			while (r == 1 && j1 < np1 && an->parts[j1].off < a->off)
				j1++;
			if ((j < np0 && an->parts[j].off == a->off) || (r == 1 && j1 < np1 && an->parts[j1].off == a->off) ||
			    np >= AN_MAX_PARTS)
				continue;
			if (np - np0 >= AN_MAX_ALT_PARTS) {
				an->st.sql_truncated++; /* the other reading's further statements */
				break;
			}
			an->parts[np] = *a;
			an->part_mode[np++] = (uint8_t)(an->alt_mode[i] | AN_PART_ALT);
			*single = 0;
		}
	}
	return np;
}
