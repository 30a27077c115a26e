/* placeholder */
#include "error.h"
