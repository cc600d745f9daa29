/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: EventNotifier, a level-triggered wake-up flag backed by a file
 * descriptor (an eventfd, or a non-blocking pipe where eventfd is missing).
 *
 * The struct is public so it can be embedded by value.  rfd is the end to
 * poll for readability, wfd the end that event_notifier_set() writes (the
 * same descriptor for an eventfd).  Treat the fields as read-only.
 *
 * Errors (aioctx/error.h): calls returning int return 0 or -errno.
 */
#ifndef AIOCTX_EVENT_NOTIFIER_H
#define AIOCTX_EVENT_NOTIFIER_H

#include <stdbool.h>
#include <aioctx/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EventNotifier {
    int rfd;
    int wfd;
    bool initialized;
} EventNotifier;

typedef void EventNotifierHandler(EventNotifier *);

/*
 * Create the notifier's descriptors; when active is non-zero it starts set.
 * Returns 0 or -errno.  Any thread.
 */
AIOCTX_API int event_notifier_init(EventNotifier *e, int active);

/*
 * Close the descriptors.  Idempotent: cleaning up twice, or cleaning up a
 * notifier whose init failed, does nothing.  Unregister the notifier from
 * any AioContext first.  Any thread, once no other thread uses e.
 */
AIOCTX_API void event_notifier_cleanup(EventNotifier *e);

/*
 * Set the notifier so its read descriptor polls readable.  Setting an
 * already set notifier is fine.  Async-signal-safe and thread-safe.
 * Returns 0 or -errno.
 */
AIOCTX_API int event_notifier_set(EventNotifier *e);

/*
 * Clear the notifier.  Returns 1 if it was set, 0 if it was not.
 * Any thread, but usually the one that polls it.
 */
AIOCTX_API int event_notifier_test_and_clear(EventNotifier *e);

/*
 * The descriptor to poll for readability, or -1 if not initialised.  Any
 * thread.
 */
AIOCTX_API int event_notifier_get_fd(const EventNotifier *e);

/* The descriptor event_notifier_set() writes to, or -1.  Any thread. */
AIOCTX_API int event_notifier_get_wfd(const EventNotifier *e);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_EVENT_NOTIFIER_H */
