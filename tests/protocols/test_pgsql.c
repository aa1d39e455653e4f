/* Placeholder suite for pgsql; replaced by the real tests. */
#include <criterion/criterion.h>

Test(pgsql, placeholder)
{
	cr_assert(1);
}
