/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An intrusive singly linked FIFO: a head pointer and a pointer to the
 * last element's link (or to the head when empty), so pushing at the tail
 * and popping at the head are O(1).  Elements carry their own link field,
 * named in each call.  Not thread-safe: callers serialise.
 *
 *     typedef AIO_FIFO(Req) ReqFifo;
 *     ReqFifo q;
 *     aio_fifo_init(&q);
 *     AIO_FIFO_PUSH(&q, req, next);
 *     while ((req = AIO_FIFO_POP(&q, next))) { ... }
 */
#ifndef AIOCTX_UTIL_FIFO_H
#define AIOCTX_UTIL_FIFO_H

#include <stddef.h>

#define AIO_FIFO(type)                                                         \
    struct {                                                                   \
        type *head;                                                            \
        type **tail;                                                           \
    }

#define aio_fifo_init(q) ((q)->head = NULL, (q)->tail = &(q)->head)

#define aio_fifo_empty(q) ((q)->head == NULL)

#define AIO_FIFO_PUSH(q, elm, field)                                           \
    do {                                                                       \
        (elm)->field = NULL;                                                   \
        *(q)->tail = (elm);                                                    \
        (q)->tail = &(elm)->field;                                             \
    } while (0)

/* The first element, unlinked, or NULL when the FIFO is empty. */
#define AIO_FIFO_POP(q, field)                                                 \
    ({                                                                         \
        __typeof__((q)->head) fifo_elm_ = (q)->head;                           \
        if (fifo_elm_) {                                                       \
            (q)->head = fifo_elm_->field;                                      \
            if (!(q)->head) {                                                  \
                (q)->tail = &(q)->head;                                        \
            }                                                                  \
        }                                                                      \
        fifo_elm_;                                                             \
    })

/* Unlink elm, which must be in q (O(position)). */
#define AIO_FIFO_REMOVE(q, elm, field)                                         \
    do {                                                                       \
        __typeof__((q)->head) *fifo_link_ = &(q)->head;                        \
        while (*fifo_link_ != (elm)) {                                         \
            fifo_link_ = &(*fifo_link_)->field;                                \
        }                                                                      \
        *fifo_link_ = (elm)->field;                                            \
        if (!*fifo_link_) {                                                    \
            (q)->tail = fifo_link_;                                            \
        }                                                                      \
    } while (0)

#endif /* AIOCTX_UTIL_FIFO_H */
