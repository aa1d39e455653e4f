/* Config loader (stub). */
#include "cap.h"
