/* Fuzz target for the MySQL / MariaDB decoder: both directions with arbitrary
 * splits, gaps and mid-stream starts (input format in decoder_driver.h). */
#include "decoder_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_decoder(&proto_mysql, data, size);
}
