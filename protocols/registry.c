/* The flat list of decoders capture can choose from: the built-in ones, then any
 * registered at start-up. */
#include <errno.h>
#include <string.h>

#include "proto.h"

const struct proto_decoder *proto_registry[PROTO_MAX + 1] = {
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

int proto_index(const struct proto_decoder *d)
{
	for (int i = 0; proto_registry[i]; i++)
		if (proto_registry[i] == d)
			return i;
	return -1;
}

int proto_register(const struct proto_decoder *d)
{
	if (proto_by_name(d->name))
		return -EEXIST;
	for (size_t i = 0; i < PROTO_MAX; i++)
		if (!proto_registry[i]) {
			proto_registry[i] = d;
			proto_registry[i + 1] = NULL;
			return 0;
		}
	return -ENOSPC;
}
