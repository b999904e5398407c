#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

/*
 * The only parts of hiredis this project uses: the command formatter and the
 * reply reader. Never the blocking connect/command API: SwiftNIO does all I/O.
 */
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/*
 * Formats one command whose arguments lie back to back in `base`, argument i
 * being `lengths[i]` bytes long. Binary-safe (explicit lengths). On success
 * returns the length of the RESP text written to `*target`, which the caller
 * frees with redisFreeSdsCommand; returns -1 on failure. hiredis' sds variant
 * writes the headers with its own sdscatfmt, not the C library's sprintf.
 */
static inline int chiredis_format_packed(char **target, int argc, const char *base, const size_t *lengths) {
    enum { STACK_ARGS = 32 };
    const char *stack_argv[STACK_ARGS];
    const char **argv = stack_argv;
    if (argc > STACK_ARGS) {
        argv = (const char **)malloc(sizeof(char *) * (size_t)argc);
        if (argv == NULL) return -1;
    }
    size_t offset = 0;
    for (int i = 0; i < argc; i++) {
        argv[i] = base + offset;
        offset += lengths[i];
    }
    int len = redisFormatSdsCommandArgv((sds *)target, argc, argv, lengths);
    if (argv != stack_argv) free((void *)argv);
    return len;
}

/* The reader's user data as a read task sees it (set on the task, or on an ancestor task). */
static inline void *chiredis_task_privdata(const redisReadTask *task) {
    while (task != NULL && task->privdata == NULL) task = task->parent;
    return task != NULL ? task->privdata : NULL;
}

/* The reader's error text, or NULL when it has none. */
static inline const char *chiredis_reader_error(const redisReader *reader) {
    return reader->err ? reader->errstr : NULL;
}

#endif
