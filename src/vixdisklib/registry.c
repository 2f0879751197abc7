/* registry.c - the table of live connections and disk handles.
 *
 * Callers pass raw pointers; before touching one we look it up here, so a
 * NULL, stale or foreign pointer is an error instead of a crash.  Each call
 * holds a reference while it runs, and Close/Disconnect wait for running
 * calls on the object to finish before freeing it. */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "vixdl.h"

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct vixdl_obj **slots;   /* open addressing; NULL = empty, TOMB = deleted */
static size_t nslots, nused;
static struct vixdl_obj tomb;
#define TOMB (&tomb)

static size_t hash_ptr(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0xed5ad4bbu;
    x ^= x >> 11;
    return (size_t)x;
}

static struct vixdl_obj **find(const void *p)
{
    if (!nslots)
        return NULL;
    for (size_t i = hash_ptr(p) & (nslots - 1), n = 0; n < nslots; i = (i + 1) & (nslots - 1), n++) {
        if (!slots[i])
            return NULL;
        if (slots[i] == p)
            return &slots[i];
    }
    return NULL;
}

static int grow(void)
{
    size_t n = nslots ? nslots * 2 : 64;
    struct vixdl_obj **s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < nslots; i++) {
        struct vixdl_obj *o = slots[i];
        if (!o || o == TOMB)
            continue;
        size_t j = hash_ptr(o) & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = o;
    }
    free(slots);
    slots = s;
    nslots = n;
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += slots[i] != NULL;
    nused = live;
    return 0;
}

int vixdl_register(struct vixdl_obj *o, enum vixdl_kind kind)
{
    o->kind = kind;
    atomic_store(&o->refs, 0);
    pthread_rwlock_wrlock(&reg_lock);
    if ((nused + 1) * 2 > nslots && grow() < 0) {
        pthread_rwlock_unlock(&reg_lock);
        return -1;
    }
    size_t i = hash_ptr(o) & (nslots - 1);
    while (slots[i] && slots[i] != TOMB)
        i = (i + 1) & (nslots - 1);
    if (!slots[i])
        nused++;
    slots[i] = o;
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

int vixdl_acquire(const void *p, enum vixdl_kind kind)
{
    if (!p)
        return 0;
    pthread_rwlock_rdlock(&reg_lock);
    struct vixdl_obj **s = find(p);
    int ok = s && (*s)->kind == kind;
    if (ok)
        atomic_fetch_add(&(*s)->refs, 1);
    pthread_rwlock_unlock(&reg_lock);
    return ok;
}

void vixdl_release(struct vixdl_obj *o)
{
    atomic_fetch_sub(&o->refs, 1);
}

void vixdl_unregister_wait(struct vixdl_obj *o)
{
    pthread_rwlock_wrlock(&reg_lock);
    struct vixdl_obj **s = find(o);
    if (s)
        *s = TOMB;
    pthread_rwlock_unlock(&reg_lock);
    /* Calls that acquired the object before it left the table finish
     * quickly (they are I/O calls); wait for them. */
    while (atomic_load(&o->refs) > 1)
        sched_yield();
}

void vixdl_registry_release(void)
{
    pthread_rwlock_wrlock(&reg_lock);
    int live = 0;
    for (size_t i = 0; i < nslots; i++)
        live |= slots[i] && slots[i] != TOMB;
    /* Objects the caller never closed keep the table alive. */
    if (!live) {
        free(slots);
        slots = NULL;
        nslots = nused = 0;
    }
    pthread_rwlock_unlock(&reg_lock);
}
