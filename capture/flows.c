/* Flow table (stub). */
#include "cap.h"
