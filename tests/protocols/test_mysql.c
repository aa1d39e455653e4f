/* Placeholder suite for mysql; replaced by the real tests. */
#include <criterion/criterion.h>

Test(mysql, placeholder)
{
	cr_assert(1);
}
