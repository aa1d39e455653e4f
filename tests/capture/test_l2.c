/* Placeholder suite for l2; replaced by the real tests. */
#include <criterion/criterion.h>

Test(l2, placeholder)
{
	cr_assert(1);
}
