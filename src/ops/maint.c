/* maint.c - the maintenance operations of ops.h over the engine's
 * (vmdk/maint*.c): argument checks, percentages for the progress callback
 * and the VixDiskLib semantics of each call.  See docs/maintenance.md. */
#include <stdlib.h>

#include "ops.h"

/* Engine progress (done/total after each durable step) -> percentages
 * that only increase, each reported once; FALSE from the caller cancels. */
struct pct {
    ops_progress_fn fn;
    void *data;
    int last;
};

static int pct_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct pct *p = ctx;
    int v = total ? (int)(done >= total ? 100 : done * 100 / total) : 100;
    if (v <= p->last)
        return 1;
    p->last = v;
    return p->fn(p->data, v) ? 1 : 0;
}

static vmdk_disk *engine(struct vdisk *d, const char *what)
{
    vmdk_disk *e = vdisk_local_engine(d);
    if (!e)
        vd_err_set(VD_E_UNSUPPORTED, "%s works on local disks only", what);
    return e;
}

/* Start at 0% (a FALSE there cancels before anything changes). */
static int start(struct pct *p, const char *what)
{
    if (p->fn && !p->fn(p->data, 0))
        return vd_err_set(VD_E_CANCELLED, "%s cancelled by the progress callback", what);
    p->last = 0;
    return 0;
}

int ops_grow(const char *path, uint64_t capacity, int update_geometry,
             ops_progress_fn progress, void *data)
{
    struct pct p = { progress, data, -1 };
    int rc = start(&p, "grow");
    if (rc < 0)
        return rc;
    return vmdk_grow(path, capacity, update_geometry, progress ? pct_cb : NULL, &p);
}

int ops_shrink(struct vdisk *d, ops_progress_fn progress, void *data)
{
    vmdk_disk *e = engine(d, "Shrink");
    if (!e)
        return -VD_E_UNSUPPORTED;
    struct pct p = { progress, data, -1 };
    int rc = start(&p, "shrink");
    if (rc < 0)
        return rc;
    return vmdk_shrink(e, progress ? pct_cb : NULL, &p);
}

int ops_defragment(struct vdisk *d, ops_progress_fn progress, void *data)
{
    vmdk_disk *e = engine(d, "Defragment");
    if (!e)
        return -VD_E_UNSUPPORTED;
    struct pct p = { progress, data, -1 };
    int rc = start(&p, "defragment");
    if (rc < 0)
        return rc;
    return vmdk_defragment(e, progress ? pct_cb : NULL, &p);
}

int ops_is_attach_possible(struct vdisk *parent, struct vdisk *child)
{
    vmdk_disk *p = engine(parent, "Attach"), *c = p ? engine(child, "Attach") : NULL;
    if (!p || !c)
        return -VD_E_UNSUPPORTED;
    return vmdk_attach_possible(p, c);
}

int ops_attach(struct vdisk *parent, struct vdisk *child)
{
    vmdk_disk *p = engine(parent, "Attach"), *c = p ? engine(child, "Attach") : NULL;
    if (!p || !c)
        return -VD_E_UNSUPPORTED;
    return vmdk_attach(p, c);
}

struct report_bridge {
    ops_report_fn fn;
    void *data;
};

static void report_cb(void *ctx, int level, const char *msg)
{
    struct report_bridge *b = ctx;
    if (b->fn)
        b->fn(b->data, level, msg);
}

int ops_check_repair(const char *path, int repair, ops_report_fn report, void *data)
{
    struct report_bridge b = { report, data };
    struct vmdk_check_result res;
    int rc = vmdk_check(path, repair, report_cb, &b, &res);
    if (rc < 0)
        return rc;
    if (!repair && res.problems && res.cantfix == res.problems)
        return vd_err_set(VD_E_CANTREPAIR, "%s: %u problem%s found that no repair can fix",
                          path, res.problems, res.problems == 1 ? "" : "s");
    if (!repair && res.problems && res.cantfix)
        return vd_err_set(VD_E_CANTREPAIR, "%s: %u problem%s found; %u of them no repair can "
                          "fix, so a repair would change nothing", path, res.problems,
                          res.problems == 1 ? "" : "s", res.cantfix);
    if (!repair && res.problems)
        return vd_err_set(VD_E_NEEDSREPAIR, "%s: %u problem%s found (run CheckRepair with "
                          "repair to fix them)", path, res.problems, res.problems == 1 ? "" : "s");
    if (res.unrepaired)
        return vd_err_set(VD_E_CANTREPAIR, "%s: %u of %u problems could not be repaired", path,
                          res.unrepaired, res.problems);
    return 0;
}
