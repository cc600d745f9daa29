/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing a test's temporary directory tree. */
#ifndef AIOCTX_TEST_TREE_H
#define AIOCTX_TEST_TREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int test_tree_remove_entry(const char *path,
                                         const struct stat *st, int flag,
                                         struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Remove dir and everything under it (symbolic links are not followed). */
static inline void test_tree_remove(const char *dir)
{
    nftw(dir, test_tree_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* AIOCTX_TEST_TREE_H */
