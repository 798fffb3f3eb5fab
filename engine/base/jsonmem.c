/* jsonmem.c - jansson allocation hooks that remember a failure.
 *
 * jansson's allocator is process-global (json_set_alloc_funcs), so the hooks
 * are installed once; the failure flag is per thread, because the server
 * parses on several threads at once. See jsonmem.h for why this exists.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "accrue/jsonmem.h"

static _Thread_local bool alloc_failed;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *watched_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        alloc_failed = true;
    return p;
}

static void install_hooks(void)
{
    json_set_alloc_funcs(watched_malloc, free);
}

void acr_jsonmem_init(void)
{
    pthread_once(&hooks_once, install_hooks);
}

void acr_jsonmem_begin(void)
{
    acr_jsonmem_init();
    alloc_failed = false;
}

bool acr_jsonmem_failed(void)
{
    return alloc_failed;
}
