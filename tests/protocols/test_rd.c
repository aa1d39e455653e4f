/* The bounded reader: every read past the end sets the sticky error and returns 0. */
#include <criterion/criterion.h>

#include "rd.h"

Test(rd, reads_in_bounds)
{
	const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 'a', 'b', 0, 0xfc, 0x34, 0x12 };
	struct rd r = rd_make(b, sizeof b);
	cr_assert_eq(rd_u8(&r), 1);
	cr_assert_eq(rd_be16(&r), 0x0203);
	cr_assert_eq(rd_le16(&r), 0x0504);
	struct strv s = rd_cstr(&r);
	cr_assert_eq(s.n, 2);
	cr_assert(strv_eq(s, "ab"));
	cr_assert_eq(rd_lenenc(&r, NULL), 0x1234);
	cr_assert_eq(rd_left(&r), 0);
	cr_assert_not(r.err);
}

Test(rd, past_end_is_sticky_and_zero)
{
	const uint8_t b[] = { 0xff, 0xff, 0xff };
	struct rd r = rd_make(b, sizeof b);
	cr_assert_eq(rd_be32(&r), 0);
	cr_assert(r.err);
	cr_assert_eq(rd_u8(&r), 0, "a read after an error returns 0 even if bytes remain");
	cr_assert_eq(rd_left(&r), 0);
}

Test(rd, every_width_at_every_short_length)
{
	const uint8_t b[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	for (size_t n = 0; n < 8; n++) {
		struct rd r = rd_make(b, n);
		(void)rd_le64(&r);
		cr_assert(r.err, "le64 on %zu bytes", n);
		r = rd_make(b, n);
		(void)rd_be64(&r);
		cr_assert(r.err);
		if (n < 4) {
			r = rd_make(b, n);
			(void)rd_le32(&r);
			cr_assert(r.err);
		}
		if (n < 3) {
			r = rd_make(b, n);
			(void)rd_le24(&r);
			cr_assert(r.err);
		}
	}
}

Test(rd, cstr_without_nul_fails)
{
	const uint8_t b[] = { 'a', 'b', 'c' };
	struct rd r = rd_make(b, sizeof b);
	struct strv s = rd_cstr(&r);
	cr_assert(r.err);
	cr_assert_null(s.p);
}

Test(rd, huge_lengths_do_not_overflow)
{
	const uint8_t b[] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'x' };
	struct rd r = rd_make(b, sizeof b);
	struct strv s = rd_lenenc_str(&r);
	cr_assert(r.err);
	cr_assert_eq(s.n, 0);
	r = rd_make(b, sizeof b);
	rd_skip(&r, SIZE_MAX);
	cr_assert(r.err);
	r = rd_make(b, sizeof b);
	(void)rd_bytes(&r, SIZE_MAX - 1);
	cr_assert(r.err);
}

Test(rd, sub_reader_is_limited)
{
	const uint8_t b[] = { 1, 2, 3, 4, 5 };
	struct rd r = rd_make(b, sizeof b);
	struct rd c = rd_sub(&r, 2);
	cr_assert_eq(rd_u8(&c), 1);
	cr_assert_eq(rd_u8(&c), 2);
	cr_assert_eq(rd_u8(&c), 0);
	cr_assert(c.err);
	cr_assert_not(r.err);
	cr_assert_eq(rd_u8(&r), 3);
	struct rd bad = rd_sub(&r, 10);
	cr_assert(bad.err);
	cr_assert(r.err);
}

Test(rd, lenenc_null_and_invalid)
{
	const uint8_t n[] = { 0xfb };
	int is_null = 0;
	struct rd r = rd_make(n, 1);
	cr_assert_eq(rd_lenenc(&r, &is_null), 0);
	cr_assert(is_null);
	const uint8_t e[] = { 0xff };
	r = rd_make(e, 1);
	(void)rd_lenenc(&r, NULL);
	cr_assert(r.err);
}
