/* SQL normaliser (stub). */
#include "an.h"
