/* TEST-ONLY (see kqueue_shim.h). Included last by the backend source in the shim
 * build: a real kqueue is released by close(); the shim's table must be too. */
#pragma once
#include "kqueue_shim.h"
#define close(fd) logcaster_kqueue_shim_close(fd)
