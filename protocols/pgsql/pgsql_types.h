/* PostgreSQL binary-format parameter rendering for the pgsql decoder: turns a Bind
 * value sent in binary format into the text PostgreSQL itself would print, for the
 * common type OIDs; anything else becomes hex. Private to protocols/pgsql*.c. */
#ifndef DBTAP_PGSQL_TYPES_H
#define DBTAP_PGSQL_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Renders n bytes of a binary value of type oid into out (at most cap bytes, not
 * NUL-terminated). Returns the length written; *is_hex=1 when the value was shown as
 * hex because the type is not decoded or the bytes do not fit the type. */
size_t pgt_render_binary(uint32_t oid, const uint8_t *v, size_t n, char *out, size_t cap, int *is_hex);

/* Lowercase hex of n bytes, at most cap bytes written. */
size_t pgt_hex(const uint8_t *v, size_t n, char *out, size_t cap);

#endif
