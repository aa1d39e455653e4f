/* dbtap entry point (stub). */
#include <stdio.h>

#include "dbtap_version.h"

int main(void)
{
	printf("dbtap %s\n", DBTAP_VERSION);
	return 0;
}
