/* Placeholder suite for sqlnorm; replaced by the real tests. */
#include <criterion/criterion.h>

Test(sqlnorm, placeholder)
{
	cr_assert(1);
}
