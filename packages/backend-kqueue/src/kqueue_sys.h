// The kqueue API: the system's <sys/event.h>, or, for the Linux test build only,
// the kqueue-on-epoll shim in test/shim (see its header for what it emulates).
#pragma once
#ifdef LOGCASTER_KQUEUE_SHIM
#include "kqueue_shim.h"
#else
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#endif
