/* Capture loop (stub). */
#include "cap.h"
