/* Placeholder suite for sqlite_sink; replaced by the real tests. */
#include <criterion/criterion.h>

Test(sqlite_sink, placeholder)
{
	cr_assert(1);
}
