/* Link-layer shim (stub). */
#include "cap.h"
