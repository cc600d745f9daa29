/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: symbol export macro shared by every public header.
 */
#ifndef AIOCTX_EXPORT_H
#define AIOCTX_EXPORT_H

/*
 * AIOCTX_API marks a function as part of the library's ABI.  The library is
 * built with -fvisibility=hidden, so anything not marked stays private.
 */
#if defined(__GNUC__)
#define AIOCTX_API __attribute__((visibility("default")))
#else
#define AIOCTX_API
#endif

#if defined(__GNUC__)
#define AIOCTX_PRINTF(fmt_idx, arg_idx)                                        \
    __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define AIOCTX_PRINTF(fmt_idx, arg_idx)
#endif

#endif /* AIOCTX_EXPORT_H */
