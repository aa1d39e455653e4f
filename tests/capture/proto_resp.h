/* The stub RESP decoder's table entry (see proto_resp.c). */
#ifndef DBTAP_TEST_PROTO_RESP_H
#define DBTAP_TEST_PROTO_RESP_H
#include "proto.h"
extern const struct proto_decoder proto_resp;
#endif
