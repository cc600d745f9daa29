/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Relaxed and ordered atomic accessors, spelled once. */
#ifndef AIOCTX_UTIL_ATOMIC_H
#define AIOCTX_UTIL_ATOMIC_H

#define aio_load(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define aio_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define aio_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define aio_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#endif /* AIOCTX_UTIL_ATOMIC_H */
