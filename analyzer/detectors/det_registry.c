/* The detector table: every rule detector, in the order their findings are raised for one
 * statement. The learned baseline (issue #7: new_query_shape, new_client, new_application,
 * off_hours) plugs in here as one more entry with on_statement / on_login / on_tick. */
#include "an_int.h"

const struct an_detector *const an_detectors[] = {
	&det_sql_injection,
	&det_error_burst,
	&det_auth_bruteforce,
	&det_privilege_change,
	&det_destructive_statement,
	&det_bulk_read,
	&det_data_export,
	&det_cleartext_password,
	&det_sensitive_access,
	&det_protocol_anomaly,
	&det_new_query_shape,
	&det_new_client,
	&det_new_application,
	&det_off_hours,
	NULL,
};
