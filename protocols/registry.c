/* The flat list of decoders capture can choose from. */
#include <string.h>

#include "proto.h"

const struct proto_decoder *const proto_registry[] = {
	&proto_pgsql,
	&proto_mysql,
	NULL,
};

const struct proto_decoder *proto_by_name(const char *name)
{
	for (size_t i = 0; proto_registry[i]; i++)
		if (strcmp(proto_registry[i]->name, name) == 0)
			return proto_registry[i];
	return NULL;
}
