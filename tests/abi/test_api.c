/*
 * test_api.c - VixDiskLib through its public API, as a client program
 * sees it: connections, every creatable disk type, I/O limits, metadata,
 * allocated blocks, chains, asynchronous I/O, handle validation, locking,
 * error texts, unlink, rename and clone.
 *
 * The library is initialised once for the executable (group setup); each
 * test gets its own scratch directory and local connection (abi_util.c).
 * Semantics follow reference vddk-api.md sections 5 and 6.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_util.h"

#define SECTOR VIXDISKLIB_SECTOR_SIZE
/* 8 MiB and 3 sectors: the last grain and chunk are partial. */
#define CAP 16387u
/* Just over 4 GiB: a split sparse disk gets 3 extents (2047 MiB each). */
#define BIG_SPLIT_CAP (4194304u * 2u + 2048u)

static const struct {
    VixDiskLibDiskType type;
    const char *name;
} creatable[] = {
    { VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "monolithicSparse" },
    { VIXDISKLIB_DISK_MONOLITHIC_FLAT, "monolithicFlat" },
    { VIXDISKLIB_DISK_SPLIT_SPARSE, "splitSparse" },
    { VIXDISKLIB_DISK_SPLIT_FLAT, "splitFlat" },
    { VIXDISKLIB_DISK_VMFS_FLAT, "vmfsFlat" },
    { VIXDISKLIB_DISK_VMFS_THIN, "vmfsThin" },
};
#define NCREATABLE (sizeof creatable / sizeof creatable[0])

/* ---- helpers -------------------------------------------------------------- */

/* An in-memory copy of what the disk should contain. */
struct model {
    uint8 *buf;
    uint64 sectors;
};

static void model_init(struct model *m, uint64 sectors)
{
    m->sectors = sectors;
    m->buf = calloc(sectors, SECTOR);
    assert_non_null(m->buf);
}

static void model_free(struct model *m)
{
    free(m->buf);
    m->buf = NULL;
}

/* Write a pattern to the disk and the model. */
static void model_write(VixDiskLibHandle h, struct model *m, uint64 s, uint64 n, uint32_t seed)
{
    assert_true(s + n <= m->sectors);
    abi_fill(m->buf + s * SECTOR, n * SECTOR, s * SECTOR, seed);
    ABI_OK(VixDiskLib_Write(h, s, n, m->buf + s * SECTOR));
}

/* Read the whole disk in odd-sized pieces and compare with the model. */
static void model_verify(VixDiskLibHandle h, const struct model *m, const char *what)
{
    const uint64 piece = 1000;
    uint8 *buf = malloc(piece * SECTOR);
    assert_non_null(buf);
    for (uint64 s = 0; s < m->sectors; s += piece) {
        uint64 n = m->sectors - s < piece ? m->sectors - s : piece;
        memset(buf, 0xEE, n * SECTOR);
        VixError e = VixDiskLib_Read(h, s, n, buf);
        if (e != VIX_OK) {
            free(buf);
            fail_msg("%s: Read(%lu, %lu) returned %lu (%s)", what, (unsigned long)s,
                     (unsigned long)n, (unsigned long)e, abi_err_text(e));
        }
        for (uint64 i = 0; i < n; i++) {
            if (memcmp(buf + i * SECTOR, m->buf + (s + i) * SECTOR, SECTOR) != 0) {
                free(buf);
                fail_msg("%s: sector %lu differs from the expected content", what,
                         (unsigned long)(s + i));
            }
        }
    }
    free(buf);
}

/* Number of files named STEM.xxx or STEM-xxx in dir. */
static size_t count_stem(const char *dir, const char *stem)
{
    char **v;
    size_t n = abi_list(dir, &v), c = 0, l = strlen(stem);
    for (size_t i = 0; i < n; i++)
        if (strncmp(v[i], stem, l) == 0 && (v[i][l] == '.' || v[i][l] == '-'))
            c++;
    abi_free_list(v, n);
    return c;
}

static size_t count_files(const char *dir)
{
    char **v;
    size_t n = abi_list(dir, &v);
    abi_free_list(v, n);
    return n;
}

static void print_blocks(const char *title, const VixDiskLibBlock *b, size_t n)
{
    fprintf(stderr, "%s (%zu):", title, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " [%lu+%lu]", (unsigned long)b[i].offset, (unsigned long)b[i].length);
    fprintf(stderr, "\n");
}

/* QueryAllocatedBlocks must return exactly the expected list. */
static void expect_blocks(VixDiskLibHandle h, uint64 start, uint64 n, uint64 chunk,
                          const VixDiskLibBlock *exp, size_t nexp)
{
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, start, n, chunk, &bl));
    assert_non_null(bl);
    int same = bl->numBlocks == nexp;
    for (size_t i = 0; same && i < nexp; i++)
        same = bl->blocks[i].offset == exp[i].offset && bl->blocks[i].length == exp[i].length;
    if (!same) {
        fprintf(stderr, "QueryAllocatedBlocks(%lu, %lu, chunk %lu):\n", (unsigned long)start,
                (unsigned long)n, (unsigned long)chunk);
        print_blocks("  expected", exp, nexp);
        print_blocks("  got     ", bl->blocks, bl->numBlocks);
    }
    ABI_OK(VixDiskLib_FreeBlockList(bl));
    assert_true(same);
}

struct progress {
    int calls, last, bad, cancel_at;
    int other_thread;
    pthread_t caller;
};

static void progress_init(struct progress *p, int cancel_at)
{
    memset(p, 0, sizeof *p);
    p->last = -1;
    p->cancel_at = cancel_at;
    p->caller = pthread_self();
}

/* Records percentages; fails the progress (bad++) if one is outside 0..100
 * or lower than the previous.  Returns FALSE on call number cancel_at. */
static Bool progress_cb(void *data, int pct)
{
    struct progress *p = data;
    if (pct < 0 || pct > 100 || pct < p->last)
        p->bad++;
    if (!pthread_equal(pthread_self(), p->caller))
        p->other_thread++;
    p->last = pct;
    p->calls++;
    return p->cancel_at && p->calls >= p->cancel_at ? FALSE : TRUE;
}

struct req {
    atomic_int calls;
    atomic_ulong result;
};

static void done_cb(void *data, VixError result)
{
    struct req *r = data;
    atomic_store(&r->result, (unsigned long)result);
    atomic_fetch_add(&r->calls, 1);
}

/* ---- connections -------------------------------------------------------------- */

static void use_connection(VixDiskLibConnection c, const char *name)
{
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    cp.capacity = 2048;
    const char *path = abi_path(name);
    ABI_OK(VixDiskLib_Create(c, path, &cp, NULL, NULL));
    VixDiskLibHandle h = NULL;
    /* gvddk always passes COMPRESSION_SKIPZ; it has no meaning locally. */
    ABI_OK(VixDiskLib_Open(c, path, VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ, &h));
    assert_non_null(h);
    abi_track(h);
    abi_write_pattern(h, 7, 3, 11);
    abi_expect_pattern(h, 7, 3, 11);
    abi_close(h);
}

static void test_connect_local_forms(void **state)
{
    (void)state;
    VixDiskLibConnection c = NULL;

    /* No parameters at all. */
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    assert_non_null(c);
    use_connection(c, "null.vmdk");
    ABI_OK(VixDiskLib_Disconnect(c));

    /* serverName NULL, through the old Connect. */
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    c = NULL;
    ABI_OK(VixDiskLib_Connect(&cp, &c));
    assert_non_null(c);
    use_connection(c, "connect.vmdk");
    ABI_OK(VixDiskLib_Disconnect(c));

    /* gvddk: every string non-NULL and empty, snapshotRef "", mode "nbd". */
    char empty[1] = "";
    cp.vmxSpec = empty;
    cp.serverName = empty;
    cp.thumbPrint = empty;
    cp.credType = VIXDISKLIB_CRED_UID;
    cp.creds.uid.userName = empty;
    cp.creds.uid.password = empty;
    cp.specType = VIXDISKLIB_SPEC_VMX;
    c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(&cp, FALSE, "", "nbd", &c));
    assert_non_null(c);
    use_connection(c, "gvddk.vmdk");
    ABI_OK(VixDiskLib_Disconnect(c));

    /* nbdkit: AllocateConnectParams, specType VMX, a transport list. */
    VixDiskLibConnectParams *ap = VixDiskLib_AllocateConnectParams();
    assert_non_null(ap);
    ap->specType = VIXDISKLIB_SPEC_VMX;
    c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(ap, FALSE, NULL, "file:nbdssl:nbd", &c));
    assert_non_null(c);
    use_connection(c, "nbdkit.vmdk");
    ABI_OK(VixDiskLib_Disconnect(c));
    VixDiskLib_FreeConnectParams(ap);

    /* Session credentials, local. */
    memset(&cp, 0, sizeof cp);
    cp.serverName = empty;
    cp.credType = VIXDISKLIB_CRED_SESSIONID;
    cp.creds.sessionId.cookie = empty;
    cp.creds.sessionId.userName = empty;
    cp.creds.sessionId.key = empty;
    c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(&cp, FALSE, NULL, NULL, &c));
    assert_non_null(c);
    ABI_OK(VixDiskLib_Disconnect(c));

    /* No place for the result. */
    ABI_ERR(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, NULL), VIX_E_INVALID_ARG);
}

/* Callers built against 5.x (72-byte) and 6.5 (80-byte) headers pass
 * shorter structs; for local connections nothing past them may be read
 * (the sanitizer build catches a read past the allocation). */
static void test_connect_short_structs(void **state)
{
    (void)state;
    static const size_t sizes[] = { 72, 80 };
    assert_int_equal(offsetof(VixDiskLibConnectParams, nfcHostPort) + 4, 72);
    assert_int_equal(offsetof(VixDiskLibConnectParams, vimApiVer) + 8, 80);
    for (size_t i = 0; i < 2; i++) {
        VixDiskLibConnectParams *p = malloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0, sizes[i]);
        p->serverName = NULL;
        p->credType = VIXDISKLIB_CRED_UID;
        VixDiskLibConnection c = NULL;
        VixError e = VixDiskLib_ConnectEx(p, FALSE, NULL, NULL, &c);
        if (e == VIX_OK) {
            VixDiskLibConnectParams *g = NULL;
            e = VixDiskLib_GetConnectParams(c, &g);
            VixDiskLib_FreeConnectParams(g);
            char name[32];
            snprintf(name, sizeof name, "short%zu.vmdk", sizes[i]);
            use_connection(c, name);
            ABI_OK(VixDiskLib_Disconnect(c));
        }
        free(p);
        ABI_OK(e);
    }
}

static void test_connect_remote_fails(void **state)
{
    (void)state;
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    cp.vmxSpec = (char *)"moref=vm-16";
    cp.serverName = (char *)"vcenter.invalid";
    cp.thumbPrint = (char *)"AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";
    cp.credType = VIXDISKLIB_CRED_UID;
    cp.creds.uid.userName = (char *)"administrator@vsphere.local";
    cp.creds.uid.password = (char *)"secret";
    cp.port = 443;
    cp.specType = VIXDISKLIB_SPEC_VMX;
    int dummy;
    VixDiskLibConnection c = (VixDiskLibConnection)(void *)&dummy;
    unsigned warns = abi_warn_count();
    VixError e = VixDiskLib_ConnectEx(&cp, TRUE, NULL, "nbd", &c);
    if (e == VIX_OK) {
        VixDiskLib_Disconnect(c);
        fail_msg("a remote ConnectEx to vcenter.invalid succeeded");
    }
    assert_true(e != VIX_ASYNC);
    assert_null(c);
    assert_true(abi_warn_count() > warns);
    assert_true(abi_last_warn()[0] != '\0');

    /* The same through Connect, and with an FCD spec. */
    c = (VixDiskLibConnection)(void *)&dummy;
    ABI_FAILS(VixDiskLib_Connect(&cp, &c));
    assert_null(c);
    cp.vmxSpec = NULL;
    cp.specType = VIXDISKLIB_SPEC_VSTORAGE_OBJECT;
    cp.spec.vStorageObjSpec.id = (char *)"fcd-1";
    cp.spec.vStorageObjSpec.datastoreMoRef = (char *)"datastore-1";
    c = (VixDiskLibConnection)(void *)&dummy;
    ABI_FAILS(VixDiskLib_ConnectEx(&cp, FALSE, "", "nbdssl", &c));
    assert_null(c);

    /* A local connection given a datastore path just finds no file. */
    VixDiskLibHandle h = (VixDiskLibHandle)(void *)&dummy;
    ABI_FAILS(VixDiskLib_Open(abi_conn(), "[datastore1] vm/vm.vmdk", 0, &h));
    assert_null(h);
}

static void test_connect_params_ownership(void **state)
{
    (void)state;
    VixDiskLibConnectParams *p = VixDiskLib_AllocateConnectParams();
    assert_non_null(p);
    /* Zero-filled (state is the library's). */
    assert_null(p->vmxSpec);
    assert_null(p->serverName);
    assert_null(p->thumbPrint);
    assert_int_equal(p->privateUse, 0);
    assert_int_equal(p->credType, 0);
    assert_null(p->creds.sessionId.cookie);
    assert_null(p->creds.sessionId.userName);
    assert_null(p->creds.sessionId.key);
    assert_int_equal(p->port, 0);
    assert_int_equal(p->nfcHostPort, 0);
    assert_null(p->vimApiVer);
    for (int i = 0; i < 8; i++)
        assert_int_equal(p->reserved[i], 0);
    assert_null(p->spec.vStorageObjSpec.id);
    assert_null(p->spec.vStorageObjSpec.datastoreMoRef);
    assert_null(p->spec.vStorageObjSpec.ssId);
    assert_int_equal(p->specType, VIXDISKLIB_SPEC_VMX);

    /* Caller-owned strings: static, stack and heap.  FreeConnectParams on
     * an AllocateConnectParams struct must free none of them (glibc or
     * ASan abort on a bad free; the heap string is freed below). */
    char stack_name[16] = "";
    char *heap_user = strdup("bob");
    assert_non_null(heap_user);
    p->serverName = stack_name;
    p->vmxSpec = (char *)"";
    p->thumbPrint = (char *)"";
    p->credType = VIXDISKLIB_CRED_UID;
    p->creds.uid.userName = heap_user;
    p->creds.uid.password = (char *)"pw";
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(p, FALSE, "", NULL, &c));
    /* The library copied what it needs: change the caller's strings. */
    heap_user[0] = 'X';

    /* GetConnectParams: a library-owned copy, freed with its strings. */
    VixDiskLibConnectParams *g = NULL;
    ABI_OK(VixDiskLib_GetConnectParams(c, &g));
    assert_non_null(g);
    assert_int_equal(g->credType, VIXDISKLIB_CRED_UID);
    assert_non_null(g->creds.uid.userName);
    assert_string_equal(g->creds.uid.userName, "bob");
    assert_ptr_not_equal(g->creds.uid.userName, heap_user);
    assert_true(g->serverName == NULL || g->serverName[0] == '\0');
    VixDiskLib_FreeConnectParams(g);
    ABI_ERR(VixDiskLib_GetConnectParams(c, NULL), VIX_E_INVALID_ARG);
    ABI_OK(VixDiskLib_Disconnect(c));

    VixDiskLib_FreeConnectParams(p);
    assert_string_equal(heap_user, "Xob");
    free(heap_user);
    VixDiskLib_FreeConnectParams(NULL);
}

static void test_prepare_end_cleanup(void **state)
{
    (void)state;
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    cp.serverName = (char *)"";
    ABI_OK(VixDiskLib_PrepareForAccess(&cp, "openvddk-abi"));
    ABI_OK(VixDiskLib_PrepareForAccess(NULL, "openvddk-abi"));
    ABI_OK(VixDiskLib_EndAccess(NULL, "openvddk-abi"));
    /* gvddk builds a new struct for EndAccess. */
    VixDiskLibConnectParams cp2 = cp;
    ABI_OK(VixDiskLib_EndAccess(&cp2, "openvddk-abi"));
    uint32 cleaned = 77, remaining = 77;
    ABI_OK(VixDiskLib_Cleanup(&cp, &cleaned, &remaining));
    assert_int_equal(cleaned, 0);
    assert_int_equal(remaining, 0);
    ABI_OK(VixDiskLib_Cleanup(&cp, NULL, NULL));
    ABI_OK(VixDiskLib_Cleanup(NULL, NULL, NULL));
}

/* ---- create, I/O, reopen --------------------------------------------------------- */

static void test_create_types(void **state)
{
    (void)state;
    for (size_t t = 0; t < NCREATABLE; t++) {
        char name[64];
        snprintf(name, sizeof name, "%s.vmdk", creatable[t].name);
        const char *path = abi_path(name);
        struct progress pr;
        progress_init(&pr, 0);
        VixDiskLibCreateParams cp;
        memset(&cp, 0, sizeof cp);
        cp.diskType = creatable[t].type;
        cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
        cp.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
        cp.capacity = CAP;
        /* Sector sizes left 0, as callers built against 6.x headers do. */
        ABI_OK(VixDiskLib_Create(abi_conn(), path, &cp, progress_cb, &pr));
        assert_int_equal(pr.bad, 0);
        assert_true(abi_exists(path));
        size_t files = count_stem(abi_dir(), creatable[t].name);
        if (creatable[t].type == VIXDISKLIB_DISK_MONOLITHIC_SPARSE)
            assert_int_equal(files, 1);
        else if (files < 2)
            fail_msg("%s: %zu file(s); expected a descriptor and extent files", name, files);

        struct model m;
        model_init(&m, CAP);
        VixDiskLibHandle h = abi_open(path, 0);
        VixDiskLibInfo *info = NULL;
        ABI_OK(VixDiskLib_GetInfo(h, &info));
        assert_int_equal(info->capacity, CAP);
        assert_int_equal(info->numLinks, 1);
        assert_null(info->parentFileNameHint);
        assert_int_equal(info->logicalSectorSize, 512);
        assert_int_equal(info->physicalSectorSize, 512);
        assert_int_equal(info->adapterType, VIXDISKLIB_ADAPTER_SCSI_LSILOGIC);
        VixDiskLib_FreeInfo(info);
        const char *mode = VixDiskLib_GetTransportMode(h);
        assert_non_null(mode);
        assert_string_equal(mode, "file");

        /* A new disk reads as zeros. */
        model_verify(h, &m, name);
        model_write(h, &m, 0, 1, 1);
        model_write(h, &m, 100, 300, 2);       /* across grain/chunk boundaries */
        model_write(h, &m, CAP - 1, 1, 3);     /* the last sector */
        model_write(h, &m, 8000, 11, 4);
        model_write(h, &m, 8005, 3, 5);        /* overwrite part of the above */
        model_write(h, &m, 16380, 7, 6);       /* the partial last grain */
        model_verify(h, &m, name);
        ABI_OK(VixDiskLib_Flush(h));
        abi_close(h);

        /* Reopened read-only, then read-write. */
        h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
        model_verify(h, &m, name);
        abi_close(h);
        h = abi_open(path, 0);
        model_verify(h, &m, name);
        model_write(h, &m, 4096, 128, 7);
        abi_close(h);
        h = abi_open(path, 0);
        model_verify(h, &m, name);
        abi_close(h);
        model_free(&m);
    }
}

static void test_create_errors(void **state)
{
    (void)state;
    const char *path = abi_path("exists.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 5, 1, 9);
    abi_close(h);
    /* The target must not exist; the existing disk stays intact. */
    ABI_FAILS(abi_create(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096));
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    assert_int_equal(abi_capacity(h), 2048);
    abi_expect_pattern(h, 5, 1, 9);
    abi_close(h);

    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    cp.capacity = 2048;
    ABI_ERR(VixDiskLib_Create(abi_conn(), abi_path("a.vmdk"), NULL, NULL, NULL),
            VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Create(abi_conn(), NULL, &cp, NULL, NULL), VIX_E_INVALID_ARG);
    cp.diskType = (VixDiskLibDiskType)99;
    ABI_FAILS(VixDiskLib_Create(abi_conn(), abi_path("b.vmdk"), &cp, NULL, NULL));
    assert_false(abi_exists(abi_path("b.vmdk")));
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = (VixDiskLibAdapterType)77;
    ABI_FAILS(VixDiskLib_Create(abi_conn(), abi_path("c.vmdk"), &cp, NULL, NULL));
    assert_false(abi_exists(abi_path("c.vmdk")));

    /* IDE and BusLogic adapters are recorded. */
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    ABI_OK(VixDiskLib_Create(abi_conn(), abi_path("ide.vmdk"), &cp, NULL, NULL));
    h = abi_open(abi_path("ide.vmdk"), VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->adapterType, VIXDISKLIB_ADAPTER_IDE);
    assert_true(info->physGeo.heads > 0 && info->physGeo.sectors > 0);
    VixDiskLib_FreeInfo(info);
    ABI_ERR(VixDiskLib_GetInfo(h, NULL), VIX_E_INVALID_ARG);
    VixDiskLib_FreeInfo(NULL);
    abi_close(h);
}

static void test_open_errors(void **state)
{
    (void)state;
    int dummy;
    VixDiskLibHandle h = (VixDiskLibHandle)(void *)&dummy;
    ABI_ERR(VixDiskLib_Open(abi_conn(), abi_path("missing.vmdk"), 0, &h), VIX_E_FILE_NOT_FOUND);
    assert_null(h);
    assert_true(abi_last_warn()[0] != '\0');

    /* A text file that is not a disk. */
    abi_write_file(abi_path("notadisk.vmdk"), "hello, I am not a disk\n");
    h = (VixDiskLibHandle)(void *)&dummy;
    ABI_FAILS(VixDiskLib_Open(abi_conn(), abi_path("notadisk.vmdk"), 0, &h));
    assert_null(h);
    h = (VixDiskLibHandle)(void *)&dummy;
    ABI_FAILS(VixDiskLib_Open(abi_conn(), abi_path("notadisk.vmdk"),
                              VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h));
    assert_null(h);

    ABI_ERR(VixDiskLib_Open(abi_conn(), NULL, 0, &h), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Open(abi_conn(), abi_path("missing.vmdk"), 0, NULL), VIX_E_INVALID_ARG);
}

static void test_out_of_range(void **state)
{
    (void)state;
    const char *path = abi_path("range.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, CAP - 1, 1, 7);
    abi_write_pattern(h, CAP - 2, 1, 6);

    uint8 buf[4 * SECTOR], ref[4 * SECTOR];
    memset(buf, 0xA5, sizeof buf);
    memcpy(ref, buf, sizeof buf);
    ABI_ERR(VixDiskLib_Read(h, CAP - 1, 2, buf), VIX_E_DISK_OUTOFRANGE);
    assert_memory_equal(buf, ref, sizeof buf);
    ABI_ERR(VixDiskLib_Read(h, CAP, 1, buf), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Read(h, CAP - 3, 4, buf), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Read(h, UINT64_MAX, 1, buf), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Read(h, 1, UINT64_MAX, buf), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Read(h, UINT64_MAX / 512 + 1, 1, buf), VIX_E_DISK_OUTOFRANGE);
    assert_memory_equal(buf, ref, sizeof buf);

    /* A write past the end changes nothing, not even the sectors inside. */
    uint8 w[2 * SECTOR];
    abi_fill(w, sizeof w, (CAP - 1) * SECTOR, 8);
    ABI_ERR(VixDiskLib_Write(h, CAP - 1, 2, w), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Write(h, CAP - 2, 3, w), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Write(h, CAP, 1, w), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_Write(h, 2, UINT64_MAX - 1, w), VIX_E_DISK_OUTOFRANGE);
    abi_expect_pattern(h, CAP - 1, 1, 7);
    abi_expect_pattern(h, CAP - 2, 1, 6);

    /* Async: refused at submission, no callback. */
    struct req r;
    atomic_init(&r.calls, 0);
    atomic_init(&r.result, 0);
    ABI_ERR(VixDiskLib_ReadAsync(h, CAP - 1, 2, buf, done_cb, &r), VIX_E_DISK_OUTOFRANGE);
    ABI_ERR(VixDiskLib_WriteAsync(h, CAP, 1, w, done_cb, &r), VIX_E_DISK_OUTOFRANGE);
    ABI_OK(VixDiskLib_Wait(h));
    assert_int_equal(atomic_load(&r.calls), 0);
    assert_memory_equal(buf, ref, sizeof buf);
    abi_expect_pattern(h, CAP - 1, 1, 7);

    /* The last sector itself is fine. */
    ABI_OK(VixDiskLib_Read(h, CAP - 1, 1, buf));
    assert_int_equal(abi_check(buf, SECTOR, (uint64_t)(CAP - 1) * SECTOR, 7), -1);
    abi_close(h);
}

static void test_zero_sectors(void **state)
{
    (void)state;
    const char *path = abi_path("zero.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(path, 0);
    uint8 buf[SECTOR];
    memset(buf, 0x3C, sizeof buf);
    ABI_OK(VixDiskLib_Read(h, 0, 0, buf));
    ABI_OK(VixDiskLib_Read(h, 100, 0, NULL));
    ABI_OK(VixDiskLib_Read(h, 2048, 0, buf));
    ABI_OK(VixDiskLib_Write(h, 0, 0, buf));
    ABI_OK(VixDiskLib_Write(h, 2048, 0, NULL));
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0x3C);
    abi_expect_zero(h, 0, 2048);
    abi_close(h);
}

static void test_read_only_handle(void **state)
{
    (void)state;
    const char *path = abi_path("ro.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 10, 4, 3);
    ABI_OK(VixDiskLib_WriteMetadata(h, "abi.key", "v1"));
    abi_close(h);

    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    uint8 w[4 * SECTOR];
    abi_fill(w, sizeof w, 10 * SECTOR, 99);
    VixError e = VixDiskLib_Write(h, 10, 4, w);
    assert_true(e != VIX_OK && e != VIX_ASYNC);
    struct req r;
    atomic_init(&r.calls, 0);
    atomic_init(&r.result, 0);
    e = VixDiskLib_WriteAsync(h, 10, 4, w, done_cb, &r);
    ABI_OK(VixDiskLib_Wait(h));
    if (e == VIX_ASYNC) {
        assert_int_equal(atomic_load(&r.calls), 1);
        assert_true(atomic_load(&r.result) != VIX_OK);
    } else {
        assert_true(e != VIX_OK);
        assert_int_equal(atomic_load(&r.calls), 0);
    }
    ABI_FAILS(VixDiskLib_WriteMetadata(h, "abi.key", "v2"));
    abi_expect_pattern(h, 10, 4, 3);
    char val[8];
    ABI_OK(VixDiskLib_ReadMetadata(h, "abi.key", val, sizeof val, NULL));
    assert_string_equal(val, "v1");
    abi_close(h);
}

/* UNBUFFERED with buffers that are not even 8-byte aligned. */
static void test_unbuffered(void **state)
{
    (void)state;
    const char *path = abi_path("direct.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_UNBUFFERED);
    uint8 *raw = malloc(40 * SECTOR + 8);
    assert_non_null(raw);
    uint8 *buf = raw + 3;
    abi_fill(buf, 33 * SECTOR, 100 * SECTOR, 21);
    ABI_OK(VixDiskLib_Write(h, 100, 33, buf));
    memset(buf, 0, 33 * SECTOR);
    ABI_OK(VixDiskLib_Read(h, 100, 33, buf));
    assert_int_equal(abi_check(buf, 33 * SECTOR, 100 * SECTOR, 21), -1);
    struct req r;
    atomic_init(&r.calls, 0);
    atomic_init(&r.result, 0);
    memset(buf, 0, 33 * SECTOR);
    ABI_ERR(VixDiskLib_ReadAsync(h, 100, 33, buf, done_cb, &r), VIX_ASYNC);
    ABI_OK(VixDiskLib_Wait(h));
    assert_int_equal(atomic_load(&r.calls), 1);
    assert_int_equal(atomic_load(&r.result), VIX_OK);
    assert_int_equal(abi_check(buf, 33 * SECTOR, 100 * SECTOR, 21), -1);
    free(raw);
    abi_close(h);
    h = abi_open(path, 0);
    abi_expect_pattern(h, 100, 33, 21);
    abi_close(h);

    /* The odd tail of a disk whose size is not a multiple of a page, with
     * page-aligned buffers (the O_DIRECT path), sparse and flat. */
    static const VixDiskLibDiskType types[] = { VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                                VIXDISKLIB_DISK_MONOLITHIC_FLAT };
    for (int t = 0; t < 2; t++) {
        char name[32];
        snprintf(name, sizeof name, "tail%d.vmdk", t);
        abi_create_ok(abi_path(name), types[t], CAP);
        h = abi_open(abi_path(name), VIXDISKLIB_FLAG_OPEN_UNBUFFERED);
        void *al = NULL;
        assert_int_equal(posix_memalign(&al, 4096, 4 * SECTOR), 0);
        abi_fill(al, 3 * SECTOR, (uint64_t)(CAP - 3) * SECTOR, 22);
        ABI_OK(VixDiskLib_Write(h, CAP - 3, 3, al));
        memset(al, 0, 4 * SECTOR);
        ABI_OK(VixDiskLib_Read(h, CAP - 1, 1, al));
        assert_int_equal(abi_check(al, SECTOR, (uint64_t)(CAP - 1) * SECTOR, 22), -1);
        free(al);
        abi_close(h);
        h = abi_open(abi_path(name), 0);
        abi_expect_pattern(h, CAP - 3, 3, 22);
        abi_close(h);
    }
}

/* ---- metadata --------------------------------------------------------------------- */

static void test_metadata_read(void **state)
{
    (void)state;
    const char *path = abi_path("meta.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, 0);

    /* A key every hosted disk has: adapterType (Create used LSI Logic). */
    size_t req = 12345;
    ABI_ERR(VixDiskLib_ReadMetadata(h, "adapterType", NULL, 0, &req), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, strlen("lsilogic") + 1);
    char val[64];
    ABI_OK(VixDiskLib_ReadMetadata(h, "adapterType", val, sizeof val, &req));
    assert_string_equal(val, "lsilogic");
    ABI_OK(VixDiskLib_ReadMetadata(h, "geometry.sectors", val, sizeof val, NULL));
    assert_true(atoi(val) > 0);
    ABI_OK(VixDiskLib_ReadMetadata(h, "geometry.heads", val, sizeof val, NULL));
    ABI_OK(VixDiskLib_ReadMetadata(h, "geometry.cylinders", val, sizeof val, NULL));

    const char *v = "hello world = 42";
    size_t need = strlen(v) + 1;
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.abi", v));

    /* NULL buffer: too small, length reported. */
    req = 0;
    ABI_ERR(VixDiskLib_ReadMetadata(h, "openvddk.abi", NULL, 0, &req), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, need);
    req = 0;
    ABI_ERR(VixDiskLib_ReadMetadata(h, "openvddk.abi", NULL, 100, &req), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, need);

    /* One byte short: too small, buffer untouched. */
    char small[64];
    memset(small, 0x5A, sizeof small);
    req = 0;
    ABI_ERR(VixDiskLib_ReadMetadata(h, "openvddk.abi", small, need - 1, &req),
            VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, need);
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal((unsigned char)small[i], 0x5A);
    /* requiredLen may be NULL. */
    ABI_ERR(VixDiskLib_ReadMetadata(h, "openvddk.abi", small, 1, NULL), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal((unsigned char)small[0], 0x5A);

    /* Exactly enough. */
    memset(small, 0x5A, sizeof small);
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.abi", small, need, &req));
    assert_string_equal(small, v);
    assert_int_equal((unsigned char)small[need], 0x5A);

    /* Missing key. */
    req = 0;
    ABI_ERR(VixDiskLib_ReadMetadata(h, "no.such.key", val, sizeof val, &req),
            VIX_E_DISK_KEY_NOTFOUND);
    ABI_ERR(VixDiskLib_ReadMetadata(h, "no.such.key", NULL, 0, &req), VIX_E_DISK_KEY_NOTFOUND);
    ABI_ERR(VixDiskLib_ReadMetadata(h, NULL, val, sizeof val, &req), VIX_E_INVALID_ARG);

    /* Replace, and the empty value. */
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.abi", "x"));
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.abi", val, sizeof val, &req));
    assert_string_equal(val, "x");
    assert_int_equal(req, 2);
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.empty", ""));
    ABI_ERR(VixDiskLib_ReadMetadata(h, "openvddk.empty", NULL, 0, &req), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, 1);
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.empty", val, 1, &req));
    assert_string_equal(val, "");
    ABI_ERR(VixDiskLib_WriteMetadata(h, NULL, "v"), VIX_E_INVALID_ARG);
    abi_close(h);

    /* Persisted. */
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.abi", val, sizeof val, NULL));
    assert_string_equal(val, "x");
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.empty", val, sizeof val, NULL));
    assert_string_equal(val, "");
    abi_close(h);
}

/* Values the descriptor cannot hold as they are (newline, quote) or that
 * do not fit an embedded descriptor: refused, or stored exactly -- never
 * injected into other keys or destroying the disk. */
static void test_metadata_hostile_values(void **state)
{
    (void)state;
    const char *path = abi_path("hostile.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 0, 1, 1);
    abi_write_pattern(h, 2047, 1, 2);
    static const char *const keys[] = { "inj.newline", "inj.quote", "inj.big" };
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'v', 100000);
    big[100000] = '\0';
    const char *vals[] = { "x\"\nddb.adapterType = \"ide", "a\"b", big };
    VixError written[3];
    for (int i = 0; i < 3; i++) {
        written[i] = VixDiskLib_WriteMetadata(h, keys[i], vals[i]);
        assert_true(written[i] != VIX_ASYNC);
    }
    abi_close(h);

    h = abi_open(path, 0);
    char *val = malloc(100001);
    assert_non_null(val);
    for (int i = 0; i < 3; i++) {
        VixError e = VixDiskLib_ReadMetadata(h, keys[i], val, 100001, NULL);
        if (written[i] == VIX_OK) {
            if (e != VIX_OK || strcmp(val, vals[i]) != 0)
                fail_msg("WriteMetadata(%s) succeeded but the value did not round-trip (%lu)",
                         keys[i], (unsigned long)e);
        } else if (e != VIX_E_DISK_KEY_NOTFOUND) {
            fail_msg("WriteMetadata(%s) failed (%lu) yet ReadMetadata returned %lu", keys[i],
                     (unsigned long)written[i], (unsigned long)e);
        }
    }
    ABI_OK(VixDiskLib_ReadMetadata(h, "adapterType", val, 100001, NULL));
    assert_string_equal(val, "lsilogic");
    abi_expect_pattern(h, 0, 1, 1);
    abi_expect_pattern(h, 2047, 1, 2);
    abi_close(h);
    free(val);
    free(big);
}

static void test_metadata_keys(void **state)
{
    (void)state;
    const char *path = abi_path("keys.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_SPLIT_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, 0);
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.one", "1"));
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.two", "22"));

    /* Probe as callers do: (NULL, 0, &len) gives VIX_OK or BUFFER_TOOSMALL. */
    size_t len = 0;
    VixError e = VixDiskLib_GetMetadataKeys(h, NULL, 0, &len);
    assert_true(e == VIX_OK || e == VIX_E_BUFFER_TOOSMALL);
    assert_true(len >= 2);

    char *buf = malloc(len + 16);
    assert_non_null(buf);
    memset(buf, 0x5A, len + 16);
    size_t req = 0;
    ABI_ERR(VixDiskLib_GetMetadataKeys(h, buf, len - 1, &req), VIX_E_BUFFER_TOOSMALL);
    assert_int_equal(req, len);
    for (size_t i = 0; i < len + 16; i++)
        assert_int_equal((unsigned char)buf[i], 0x5A);

    ABI_OK(VixDiskLib_GetMetadataKeys(h, buf, len, &req));
    assert_int_equal(req, len);
    /* key1\0key2\0...keyN\0\0, the whole of it counted in len. */
    assert_int_equal(buf[len - 1], '\0');
    assert_int_equal(buf[len - 2], '\0');
    assert_int_equal((unsigned char)buf[len], 0x5A);
    int one = 0, two = 0, adapter = 0;
    size_t nkeys = 0, pos = 0;
    while (buf[pos] != '\0') {
        const char *k = buf + pos;
        size_t kl = strlen(k);
        assert_true(pos + kl + 1 < len);
        assert_true(strncmp(k, "ddb.", 4) != 0);   /* no ddb. prefix */
        one += strcmp(k, "openvddk.one") == 0;
        two += strcmp(k, "openvddk.two") == 0;
        adapter += strcmp(k, "adapterType") == 0;
        /* Every listed key can be read. */
        size_t vl = 0;
        VixError ve = VixDiskLib_ReadMetadata(h, k, NULL, 0, &vl);
        if (ve != VIX_E_BUFFER_TOOSMALL || vl < 1)
            fail_msg("listed key '%s' cannot be read: %lu", k, (unsigned long)ve);
        /* Each key once. */
        for (size_t p2 = pos + kl + 1; buf[p2] != '\0'; p2 += strlen(buf + p2) + 1)
            if (strcmp(buf + p2, k) == 0)
                fail_msg("key '%s' listed twice", k);
        nkeys++;
        pos += kl + 1;
    }
    assert_int_equal(pos, len - 1);   /* the empty string ends the list */
    assert_int_equal(one, 1);
    assert_int_equal(two, 1);
    assert_int_equal(adapter, 1);
    assert_true(nkeys >= 3);

    /* A larger buffer and a NULL requiredLen are fine. */
    memset(buf, 0x5A, len + 16);
    ABI_OK(VixDiskLib_GetMetadataKeys(h, buf, len + 16, NULL));
    assert_int_equal(buf[len - 1], '\0');
    free(buf);
    abi_close(h);
}

/* ---- allocated blocks ----------------------------------------------------------------- */

static void test_qab_sparse(void **state)
{
    (void)state;
    const char *path = abi_path("qab.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 16384);
    VixDiskLibHandle h = abi_open(path, 0);
    /* Nothing written yet: no blocks (and the list is still a list). */
    expect_blocks(h, 0, 16384, 128, NULL, 0);

    abi_write_pattern(h, 0, 1, 1);          /* chunk 0 */
    abi_write_pattern(h, 128, 128, 2);      /* chunk 1, merged with chunk 0 */
    abi_write_pattern(h, 1000, 1, 3);       /* chunk 7 */
    abi_write_pattern(h, 4000, 300, 4);     /* chunks 31..33 */
    abi_write_pattern(h, 16383, 1, 5);      /* the last chunk */

    /* Written chunks only (grain = chunk = 64 KiB), adjacent ones merged. */
    const VixDiskLibBlock e128[] = { { 0, 256 }, { 896, 128 }, { 3968, 384 }, { 16256, 128 } };
    expect_blocks(h, 0, 16384, 128, e128, 4);
    const VixDiskLibBlock e256[] = { { 0, 256 }, { 768, 256 }, { 3840, 512 }, { 16128, 256 } };
    expect_blocks(h, 0, 16384, 256, e256, 4);
    /* 1 MiB chunks: 4000..4299 straddles chunks 1 and 2, merged with chunk 0. */
    const VixDiskLibBlock ebig[] = { { 0, 6144 }, { 14336, 2048 } };
    expect_blocks(h, 0, 16384, 2048, ebig, 2);

    /* Windows into the disk. */
    const VixDiskLibBlock w1[] = { { 128, 128 } };
    expect_blocks(h, 128, 128, 128, w1, 1);
    expect_blocks(h, 256, 512, 128, NULL, 0);
    const VixDiskLibBlock w2[] = { { 896, 128 }, { 3968, 128 } };
    expect_blocks(h, 768, 3328, 128, w2, 2);
    /* nbdkit's probe. */
    const VixDiskLibBlock w3[] = { { 0, 128 } };
    expect_blocks(h, 0, 128, 128, w3, 1);

    /* The list is one malloc'd block: plain free() works too. */
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, 0, 16384, 128, &bl));
    assert_non_null(bl);
    assert_int_equal(bl->numBlocks, 4);
    free(bl);

    /* Through a read-only reopen, the same answer. */
    abi_close(h);
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    expect_blocks(h, 0, 16384, 128, e128, 4);
    abi_close(h);
}

static void test_qab_flat(void **state)
{
    (void)state;
    static const VixDiskLibDiskType types[] = { VIXDISKLIB_DISK_MONOLITHIC_FLAT,
                                                VIXDISKLIB_DISK_SPLIT_FLAT,
                                                VIXDISKLIB_DISK_VMFS_FLAT };
    for (size_t t = 0; t < 3; t++) {
        char name[32];
        snprintf(name, sizeof name, "flat%zu.vmdk", t);
        abi_create_ok(abi_path(name), types[t], 16384);
        VixDiskLibHandle h = abi_open(abi_path(name), 0);
        /* Preallocated: all of it, whether written or not. */
        const VixDiskLibBlock all[] = { { 0, 16384 } };
        expect_blocks(h, 0, 16384, 128, all, 1);
        abi_write_pattern(h, 3, 1, 1);
        expect_blocks(h, 0, 16384, 128, all, 1);
        const VixDiskLibBlock win[] = { { 1024, 2048 } };
        expect_blocks(h, 1024, 2048, 1024, win, 1);
        abi_close(h);
    }
}

static void test_qab_chain(void **state)
{
    (void)state;
    const char *base = abi_path("base.vmdk");
    const char *child = abi_path("child.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 16384);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 0, 10, 1);         /* chunk 0 */
    abi_write_pattern(h, 1024, 7, 2);       /* chunk 8 */
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);

    h = abi_open(child, 0);
    abi_write_pattern(h, 130, 1, 3);        /* chunk 1 (next to the parent's chunk 0) */
    abi_write_pattern(h, 2048, 3, 4);       /* chunk 16 */
    abi_write_pattern(h, 1026, 1, 5);       /* chunk 8 again, in the child */
    /* Chain: the union of both links. */
    const VixDiskLibBlock uni[] = { { 0, 256 }, { 1024, 128 }, { 2048, 128 } };
    expect_blocks(h, 0, 16384, 128, uni, 3);
    abi_expect_pattern(h, 0, 10, 1);
    abi_expect_pattern(h, 1024, 2, 2);
    abi_expect_pattern(h, 1026, 1, 5);
    abi_expect_pattern(h, 1027, 4, 2);
    abi_close(h);

    /* SINGLE_LINK: only the child's own blocks. */
    h = abi_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK | VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    const VixDiskLibBlock own[] = { { 128, 128 }, { 1024, 128 }, { 2048, 128 } };
    expect_blocks(h, 0, 16384, 128, own, 3);
    abi_close(h);
    h = abi_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK);
    expect_blocks(h, 0, 16384, 128, own, 3);
    abi_close(h);

    /* The parent alone is unchanged. */
    h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    const VixDiskLibBlock par[] = { { 0, 128 }, { 1024, 128 } };
    expect_blocks(h, 0, 16384, 128, par, 2);
    abi_expect_pattern(h, 1024, 7, 2);
    abi_expect_zero(h, 130, 1);
    abi_close(h);
}

static void test_qab_bad_args(void **state)
{
    (void)state;
    const char *path = abi_path("qabargs.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 16384);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 0, 1, 1);
    VixDiskLibBlockList *bl = NULL;
    static const uint64 bad_chunks[] = { 0, 1, 64, 127, 131073, 262144 };
    for (size_t i = 0; i < sizeof bad_chunks / sizeof bad_chunks[0]; i++)
        ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, bad_chunks[i] * 4, bad_chunks[i], &bl),
                VIX_E_INVALID_ARG);
    /* Misaligned start or length. */
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 1, 128, 128, &bl), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 64, 128, 128, &bl), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, 129, 128, &bl), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, 16384 + 64, 128, &bl), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 256, 1000, 256, &bl), VIX_E_INVALID_ARG);
    /* Too many chunks in one call. */
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, (uint64)128 * (VIXDISKLIB_MAX_CHUNK_NUMBER + 1),
                                            128, &bl),
            VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, 16384, 128, NULL), VIX_E_INVALID_ARG);

    /* The limits themselves are valid (the range past the end is clamped). */
    const VixDiskLibBlock first[] = { { 0, 128 } };
    expect_blocks(h, 0, (uint64)128 * VIXDISKLIB_MAX_CHUNK_NUMBER, 128, first, 1);
    const VixDiskLibBlock max[] = { { 0, VIXDISKLIB_MAX_CHUNK_SIZE } };
    expect_blocks(h, 0, VIXDISKLIB_MAX_CHUNK_SIZE, VIXDISKLIB_MAX_CHUNK_SIZE, max, 1);
    abi_close(h);
}

static void test_qab_past_capacity(void **state)
{
    (void)state;
    const char *path = abi_path("qabend.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);   /* 128 * 128 + 3 */
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 0, 1, 1);
    abi_write_pattern(h, CAP - 1, 1, 2);
    /* nbdkit rounds the last query up to a chunk boundary. */
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, 0, 129 * 128, 128, &bl));
    assert_non_null(bl);
    assert_int_equal(bl->numBlocks, 2);
    assert_int_equal(bl->blocks[0].offset, 0);
    assert_int_equal(bl->blocks[0].length, 128);
    assert_int_equal(bl->blocks[1].offset, 16384);
    /* The last block covers the last sector and stays within its chunk. */
    assert_true(bl->blocks[1].length >= CAP - 16384);
    assert_true(bl->blocks[1].length <= 128);
    VixDiskLib_FreeBlockList(bl);
    /* A query entirely past the end: nothing allocated. */
    expect_blocks(h, 129 * 128, 1280, 128, NULL, 0);
    expect_blocks(h, (uint64)1 << 40, 128, 128, NULL, 0);
    abi_close(h);
}

/* ---- chains ----------------------------------------------------------------------- */

static void test_info_chain(void **state)
{
    (void)state;
    const char *base = abi_path("cbase.vmdk");
    const char *child = abi_path("cchild.vmdk");
    const char *grand = abi_path("cgrand.vmdk");
    const char *child2 = abi_path("csplit.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 0, 16, 1);
    abi_write_pattern(h, 500, 16, 2);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 1);
    assert_null(info->parentFileNameHint);
    VixDiskLib_FreeInfo(info);

    /* CreateChild of an open handle; the handle stays usable. */
    struct progress pr;
    progress_init(&pr, 0);
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, progress_cb, &pr));
    assert_int_equal(pr.bad, 0);
    ABI_OK(VixDiskLib_CreateChild(h, child2, VIXDISKLIB_DISK_SPLIT_SPARSE, NULL, NULL));
    abi_expect_pattern(h, 0, 16, 1);
    /* Errors: existing path, a type that cannot be a child. */
    ABI_FAILS(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    ABI_FAILS(VixDiskLib_CreateChild(h, abi_path("flatchild.vmdk"),
                                     VIXDISKLIB_DISK_MONOLITHIC_FLAT, NULL, NULL));
    assert_false(abi_exists(abi_path("flatchild.vmdk")));
    ABI_ERR(VixDiskLib_CreateChild(h, NULL, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
            VIX_E_INVALID_ARG);
    abi_close(h);

    h = abi_open(child, 0);
    info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 2);
    assert_non_null(info->parentFileNameHint);
    assert_non_null(strstr(info->parentFileNameHint, "cbase.vmdk"));
    assert_int_equal(info->capacity, CAP);
    assert_int_equal(info->logicalSectorSize, 512);
    assert_int_equal(info->physicalSectorSize, 512);
    VixDiskLib_FreeInfo(info);
    /* The child shows the parent's data and takes its own writes. */
    abi_expect_pattern(h, 0, 16, 1);
    abi_write_pattern(h, 8, 16, 3);
    abi_expect_pattern(h, 0, 8, 1);
    abi_expect_pattern(h, 8, 16, 3);
    abi_expect_pattern(h, 500, 16, 2);
    ABI_OK(VixDiskLib_CreateChild(h, grand, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);

    h = abi_open(grand, 0);
    info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 3);
    assert_non_null(info->parentFileNameHint);
    assert_non_null(strstr(info->parentFileNameHint, "cchild.vmdk"));
    VixDiskLib_FreeInfo(info);
    abi_expect_pattern(h, 8, 16, 3);
    abi_close(h);

    h = abi_open(child2, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 2);
    VixDiskLib_FreeInfo(info);
    abi_expect_pattern(h, 0, 16, 1);
    abi_close(h);

    /* The base kept its own content. */
    h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 0, 16, 1);
    abi_expect_zero(h, 16, 8);
    abi_close(h);
}

/* ---- asynchronous I/O ------------------------------------------------------------- */

#define NREQ 64

static void test_async_64(void **state)
{
    (void)state;
    const char *path = abi_path("async.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, 0);
    static struct req reqs[NREQ];
    uint8 *bufs = malloc((size_t)NREQ * 16 * SECTOR);
    assert_non_null(bufs);

    /* 64 writes of 1..16 sectors at sector i*32 (all outstanding). */
    for (int i = 0; i < NREQ; i++) {
        atomic_init(&reqs[i].calls, 0);
        atomic_init(&reqs[i].result, 999);
        uint64 s = (uint64)i * 32, n = 1 + (uint64)i % 16;
        abi_fill(bufs + (size_t)i * 16 * SECTOR, n * SECTOR, s * SECTOR, 40);
        ABI_ERR(VixDiskLib_WriteAsync(h, s, n, bufs + (size_t)i * 16 * SECTOR, done_cb,
                                      &reqs[i]),
                VIX_ASYNC);
    }
    ABI_OK(VixDiskLib_Wait(h));
    for (int i = 0; i < NREQ; i++) {
        if (atomic_load(&reqs[i].calls) != 1)
            fail_msg("write %d: callback called %d times", i, atomic_load(&reqs[i].calls));
        if (atomic_load(&reqs[i].result) != VIX_OK)
            fail_msg("write %d: result %lu", i, atomic_load(&reqs[i].result));
    }
    /* Synchronous reads see the data. */
    for (int i = 0; i < NREQ; i++)
        abi_expect_pattern(h, (uint64)i * 32, 1 + (uint64)i % 16, 40);

    /* 64 reads. */
    memset(bufs, 0xEE, (size_t)NREQ * 16 * SECTOR);
    for (int i = 0; i < NREQ; i++) {
        atomic_init(&reqs[i].calls, 0);
        atomic_init(&reqs[i].result, 999);
        ABI_ERR(VixDiskLib_ReadAsync(h, (uint64)i * 32, 1 + (uint64)i % 16,
                                     bufs + (size_t)i * 16 * SECTOR, done_cb, &reqs[i]),
                VIX_ASYNC);
    }
    ABI_OK(VixDiskLib_Wait(h));
    for (int i = 0; i < NREQ; i++) {
        assert_int_equal(atomic_load(&reqs[i].calls), 1);
        assert_int_equal(atomic_load(&reqs[i].result), VIX_OK);
        uint64 n = 1 + (uint64)i % 16;
        long bad = abi_check(bufs + (size_t)i * 16 * SECTOR, n * SECTOR,
                             (uint64)i * 32 * SECTOR, 40);
        if (bad >= 0)
            fail_msg("read %d: byte %ld differs", i, bad);
    }

    /* Mixed: 32 reads of the written area and 32 writes elsewhere. */
    for (int i = 0; i < NREQ; i++) {
        atomic_init(&reqs[i].calls, 0);
        atomic_init(&reqs[i].result, 999);
        uint8 *b = bufs + (size_t)i * 16 * SECTOR;
        if (i % 2) {
            uint64 s = 2048 + (uint64)i * 16;
            abi_fill(b, 16 * SECTOR, s * SECTOR, 41);
            ABI_ERR(VixDiskLib_WriteAsync(h, s, 16, b, done_cb, &reqs[i]), VIX_ASYNC);
        } else {
            memset(b, 0xEE, 16 * SECTOR);
            ABI_ERR(VixDiskLib_ReadAsync(h, (uint64)i * 32, 1, b, done_cb, &reqs[i]), VIX_ASYNC);
        }
    }
    /* Flush waits for the outstanding writes (their callbacks have run). */
    ABI_OK(VixDiskLib_Flush(h));
    for (int i = 1; i < NREQ; i += 2)
        if (atomic_load(&reqs[i].calls) != 1)
            fail_msg("Flush returned before the callback of write %d had run", i);
    ABI_OK(VixDiskLib_Wait(h));
    for (int i = 0; i < NREQ; i++) {
        assert_int_equal(atomic_load(&reqs[i].calls), 1);
        assert_int_equal(atomic_load(&reqs[i].result), VIX_OK);
        if (i % 2 == 0)
            assert_int_equal(abi_check(bufs + (size_t)i * 16 * SECTOR, SECTOR,
                                       (uint64)i * 32 * SECTOR, 40), -1);
    }
    for (int i = 1; i < NREQ; i += 2)
        abi_expect_pattern(h, 2048 + (uint64)i * 16, 16, 41);
    /* Wait with nothing outstanding. */
    ABI_OK(VixDiskLib_Wait(h));
    abi_close(h);
    free(bufs);
}

/* Flush returns only after the outstanding writes (and their callbacks)
 * are done -- with enough queued work that they cannot all finish first. */
static void test_async_flush_waits(void **state)
{
    (void)state;
    const char *path = abi_path("flushwait.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NREQ * 256);
    VixDiskLibHandle h = abi_open(path, 0);
    static struct req reqs[NREQ];
    uint8 *bufs = malloc((size_t)NREQ * 256 * SECTOR);
    assert_non_null(bufs);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NREQ; i++) {
            atomic_init(&reqs[i].calls, 0);
            atomic_init(&reqs[i].result, 999);
            uint8 *b = bufs + (size_t)i * 256 * SECTOR;
            abi_fill(b, 256 * SECTOR, (uint64)i * 256 * SECTOR, 60u + (uint32_t)round);
            ABI_ERR(VixDiskLib_WriteAsync(h, (uint64)i * 256, 256, b, done_cb, &reqs[i]),
                    VIX_ASYNC);
        }
        ABI_OK(VixDiskLib_Flush(h));
        int missing = 0;
        for (int i = 0; i < NREQ; i++)
            missing += atomic_load(&reqs[i].calls) != 1;
        ABI_OK(VixDiskLib_Wait(h));
        if (missing)
            fail_msg("round %d: Flush returned with %d of %d write callbacks not yet run", round,
                     missing, NREQ);
        for (int i = 0; i < NREQ; i++)
            assert_int_equal(atomic_load(&reqs[i].result), VIX_OK);
    }
    abi_expect_pattern(h, 0, NREQ * 256, 62);
    abi_close(h);
    free(bufs);
}

/* Close drains outstanding requests: every callback has run when it returns. */
static void test_async_close_drains(void **state)
{
    (void)state;
    const char *path = abi_path("drain.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, 0);
    static struct req reqs[NREQ];
    uint8 *bufs = malloc((size_t)NREQ * 8 * SECTOR);
    assert_non_null(bufs);
    for (int i = 0; i < NREQ; i++) {
        atomic_init(&reqs[i].calls, 0);
        atomic_init(&reqs[i].result, 999);
        abi_fill(bufs + (size_t)i * 8 * SECTOR, 8 * SECTOR, (uint64)i * 8 * SECTOR, 50);
        ABI_ERR(VixDiskLib_WriteAsync(h, (uint64)i * 8, 8, bufs + (size_t)i * 8 * SECTOR,
                                      done_cb, &reqs[i]),
                VIX_ASYNC);
    }
    abi_close(h);
    for (int i = 0; i < NREQ; i++) {
        assert_int_equal(atomic_load(&reqs[i].calls), 1);
        assert_int_equal(atomic_load(&reqs[i].result), VIX_OK);
    }
    free(bufs);
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 0, NREQ * 8, 50);
    abi_close(h);
}

/* ---- bad handles and connections ------------------------------------------------- */

/* Every handle-taking call with h must return code (and not crash). */
static void all_handle_calls(VixDiskLibHandle h, VixError code, const char *what)
{
    uint8 buf[SECTOR];
    char text[16];
    size_t req;
    uint64 space;
    VixDiskLibInfo *info = NULL;
    VixDiskLibBlockList *bl = NULL;
    struct req r;
    atomic_init(&r.calls, 0);
    atomic_init(&r.result, 0);
    const char *child = abi_path("never.vmdk");
#define H(call)                                                                \
    do {                                                                       \
        VixError e_ = (call);                                                  \
        if (e_ != code)                                                        \
            fail_msg("%s: %s returned %lu (%s), expected %lu", what, #call,    \
                     (unsigned long)e_, abi_err_text(e_), (unsigned long)code); \
    } while (0)
    H(VixDiskLib_Read(h, 0, 1, buf));
    H(VixDiskLib_Write(h, 0, 1, buf));
    H(VixDiskLib_ReadAsync(h, 0, 1, buf, done_cb, &r));
    H(VixDiskLib_WriteAsync(h, 0, 1, buf, done_cb, &r));
    H(VixDiskLib_Flush(h));
    H(VixDiskLib_Wait(h));
    H(VixDiskLib_GetInfo(h, &info));
    H(VixDiskLib_ReadMetadata(h, "adapterType", text, sizeof text, &req));
    H(VixDiskLib_WriteMetadata(h, "k", "v"));
    H(VixDiskLib_GetMetadataKeys(h, text, sizeof text, &req));
    H(VixDiskLib_QueryAllocatedBlocks(h, 0, 128, 128, &bl));
    H(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    H(VixDiskLib_Shrink(h, NULL, NULL));
    H(VixDiskLib_Defragment(h, NULL, NULL));
    H(VixDiskLib_SpaceNeededForClone(h, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, &space));
    H(VixDiskLib_IsAttachPossible(h, h));
    H(VixDiskLib_Attach(h, h));
    H(VixDiskLib_Close(h));
#undef H
    assert_int_equal(atomic_load(&r.calls), 0);
    assert_false(abi_exists(child));
    /* Not a VixError, but must not crash: NULL or a string. */
    const char *mode = VixDiskLib_GetTransportMode(h);
    (void)mode;
}

static void test_bad_handles(void **state)
{
    (void)state;
    all_handle_calls(NULL, VIX_E_INVALID_ARG, "NULL handle");

    /* A handle that was closed. */
    const char *path = abi_path("closed.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(abi_conn(), path, 0, &h));
    ABI_OK(VixDiskLib_Close(h));
    all_handle_calls(h, VIX_E_INVALID_HANDLE, "closed handle");

    /* Pointers that never were handles: an odd address, a stack object
     * full of garbage, and a connection. */
    all_handle_calls((VixDiskLibHandle)(uintptr_t)0x5eed1234abc0ull, VIX_E_INVALID_HANDLE,
                     "random pointer");
    uint64 garbage[64];
    for (int i = 0; i < 64; i++)
        garbage[i] = 0x4449534b4449534bull + (uint64)i;
    all_handle_calls((VixDiskLibHandle)(void *)garbage, VIX_E_INVALID_HANDLE, "stack garbage");
    all_handle_calls((VixDiskLibHandle)(void *)abi_conn(), VIX_E_INVALID_HANDLE,
                     "a connection");

    /* A valid handle with an invalid second handle. */
    h = abi_open(path, 0);
    ABI_FAILS(VixDiskLib_Attach(h, NULL));
    ABI_FAILS(VixDiskLib_IsAttachPossible(h, (VixDiskLibHandle)(void *)garbage));
    abi_write_pattern(h, 0, 1, 1);
    abi_close(h);
}

static void test_bad_connections(void **state)
{
    (void)state;
    VixDiskLibHandle h = NULL;
    const char *path = abi_path("c.vmdk");
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    cp.capacity = 2048;
    VixDiskLibConnectParams *g = NULL;

    ABI_ERR(VixDiskLib_Disconnect(NULL), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Open(NULL, path, 0, &h), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Create(NULL, path, &cp, NULL, NULL), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Unlink(NULL, path), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_GetConnectParams(NULL, &g), VIX_E_INVALID_ARG);

    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    ABI_OK(VixDiskLib_Disconnect(c));
    VixDiskLibConnection bogus[] = {
        c,                                                  /* disconnected */
        (VixDiskLibConnection)(uintptr_t)0x7a7a7a7a7a70ull,  /* never a connection */
    };
    for (size_t i = 0; i < 2; i++) {
        ABI_ERR(VixDiskLib_Disconnect(bogus[i]), VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_Open(bogus[i], path, 0, &h), VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_Create(bogus[i], path, &cp, NULL, NULL), VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_Unlink(bogus[i], path), VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_GetConnectParams(bogus[i], &g), VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_Clone(abi_conn(), abi_path("d.vmdk"), bogus[i], path, &cp, NULL,
                                 NULL, FALSE),
                VIX_E_INVALID_HANDLE);
        ABI_ERR(VixDiskLib_Clone(bogus[i], abi_path("d.vmdk"), abi_conn(), path, &cp, NULL,
                                 NULL, FALSE),
                VIX_E_INVALID_HANDLE);
        assert_false(abi_exists(path));
    }

    /* A disk handle is not a connection. */
    ABI_OK(VixDiskLib_Create(abi_conn(), path, &cp, NULL, NULL));
    VixDiskLibHandle d = abi_open(path, 0);
    ABI_ERR(VixDiskLib_Open((VixDiskLibConnection)(void *)d, path, 0, &h),
            VIX_E_INVALID_HANDLE);
    ABI_ERR(VixDiskLib_Disconnect((VixDiskLibConnection)(void *)d), VIX_E_INVALID_HANDLE);
    abi_expect_zero(d, 0, 1);
    abi_close(d);
}

/* Many live connections and handles, opened and closed in a shuffled
 * order: every live one keeps working, every closed one is refused at
 * once (before anything else is opened). */
#define CHURN_SLOTS 80
static void test_handle_churn(void **state)
{
    (void)state;
    const char *path = abi_path("churn.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle w = abi_open(path, 0);
    abi_write_pattern(w, 9, 1, 9);
    abi_close(w);
    VixDiskLibConnection conns[CHURN_SLOTS] = { 0 };
    VixDiskLibHandle hs[CHURN_SLOTS] = { 0 };
    uint64_t rng = 42;
    uint8 buf[SECTOR];
    for (int op = 0; op < 1500; op++) {
        int i = (int)(abi_rand(&rng) % CHURN_SLOTS);
        if (hs[i]) {
            VixDiskLibHandle h = hs[i];
            VixDiskLibConnection c = conns[i];
            hs[i] = NULL;
            conns[i] = NULL;
            abi_close(h);
            ABI_ERR(VixDiskLib_Read(h, 9, 1, buf), VIX_E_INVALID_HANDLE);
            ABI_OK(VixDiskLib_Disconnect(c));
            ABI_ERR(VixDiskLib_Disconnect(c), VIX_E_INVALID_HANDLE);
        } else {
            ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conns[i]));
            ABI_OK(VixDiskLib_Open(conns[i], path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &hs[i]));
            abi_track(hs[i]);
        }
        if (op % 100 == 99) {
            for (int k = 0; k < CHURN_SLOTS; k++) {
                if (!hs[k])
                    continue;
                memset(buf, 0, sizeof buf);
                ABI_OK(VixDiskLib_Read(hs[k], 9, 1, buf));
                assert_int_equal(abi_check(buf, SECTOR, 9 * SECTOR, 9), -1);
            }
        }
    }
    for (int k = 0; k < CHURN_SLOTS; k++) {
        if (hs[k]) {
            abi_close(hs[k]);
            ABI_OK(VixDiskLib_Disconnect(conns[k]));
        }
    }
}

/* Open/Read/Close from several threads at once (the library serialises
 * what it must), on one shared read-only disk and on private disks. */
#define OC_THREADS 8
#define OC_ROUNDS 60
struct oc_arg {
    const char *shared;
    char own[PATH_MAX];
    int failures;
};

static void *open_close_worker(void *p)
{
    struct oc_arg *a = p;
    VixDiskLibConnection c = NULL;
    if (VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c) != VIX_OK) {
        a->failures++;
        return NULL;
    }
    uint8 buf[4 * SECTOR];
    for (int r = 0; r < OC_ROUNDS; r++) {
        VixDiskLibHandle h = NULL;
        if (VixDiskLib_Open(c, a->shared, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) != VIX_OK) {
            a->failures++;
            continue;
        }
        if (VixDiskLib_Read(h, 20, 4, buf) != VIX_OK || abi_check(buf, sizeof buf, 20 * SECTOR, 20) >= 0)
            a->failures++;
        if (VixDiskLib_Close(h) != VIX_OK)
            a->failures++;
        h = NULL;
        if (VixDiskLib_Open(c, a->own, 0, &h) != VIX_OK) {
            a->failures++;
            continue;
        }
        abi_fill(buf, sizeof buf, (uint64_t)r * 4 * SECTOR, (uint32_t)r);
        if (VixDiskLib_Write(h, (uint64)r * 4, 4, buf) != VIX_OK)
            a->failures++;
        if (VixDiskLib_Close(h) != VIX_OK)
            a->failures++;
    }
    VixDiskLib_Disconnect(c);
    return NULL;
}

static void test_concurrent_open_close(void **state)
{
    (void)state;
    const char *shared = abi_path("shared.vmdk");
    abi_create_ok(shared, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(shared, 0);
    abi_write_pattern(h, 20, 4, 20);
    abi_close(h);
    static struct oc_arg args[OC_THREADS];
    pthread_t t[OC_THREADS];
    for (int i = 0; i < OC_THREADS; i++) {
        args[i].shared = shared;
        args[i].failures = 0;
        char name[32];
        snprintf(name, sizeof name, "own%d.vmdk", i);
        snprintf(args[i].own, sizeof args[i].own, "%s", abi_path(name));
        abi_create_ok(args[i].own, i % 2 ? VIXDISKLIB_DISK_MONOLITHIC_FLAT
                                         : VIXDISKLIB_DISK_SPLIT_SPARSE, 2048);
    }
    for (int i = 0; i < OC_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, open_close_worker, &args[i]), 0);
    for (int i = 0; i < OC_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < OC_THREADS; i++)
        if (args[i].failures)
            fail_msg("thread %d: %d failed calls", i, args[i].failures);
    for (int i = 0; i < OC_THREADS; i++) {
        h = abi_open(args[i].own, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
        for (int r = 0; r < OC_ROUNDS; r++)
            abi_expect_pattern(h, (uint64)r * 4, 4, (uint32_t)r);
        abi_close(h);
    }
}

/* gvddk issues aligned Read/Write on one handle from several goroutines
 * without a lock: the library must cope (reference section 6.3). */
#define SH_THREADS 4
struct sh_arg {
    VixDiskLibHandle h;
    int id;
    int failures;
};

static void *same_handle_worker(void *p)
{
    struct sh_arg *a = p;
    uint8 buf[8 * SECTOR], back[8 * SECTOR];
    for (int r = 0; r < 150; r++) {
        /* Region of this thread: 8 sectors in every 32-sector stripe. */
        uint64 s = (uint64)(r % 60) * 32 + (uint64)a->id * 8;
        abi_fill(buf, sizeof buf, s * SECTOR, (uint32_t)(a->id * 1000 + r));
        if (VixDiskLib_Write(a->h, s, 8, buf) != VIX_OK)
            a->failures++;
        if (VixDiskLib_Read(a->h, s, 8, back) != VIX_OK || memcmp(buf, back, sizeof buf) != 0)
            a->failures++;
    }
    return NULL;
}

static void test_same_handle_threads(void **state)
{
    (void)state;
    const char *path = abi_path("samehandle.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    VixDiskLibHandle h = abi_open(path, 0);
    struct sh_arg a[SH_THREADS];
    pthread_t t[SH_THREADS];
    for (int i = 0; i < SH_THREADS; i++) {
        a[i] = (struct sh_arg){ h, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, same_handle_worker, &a[i]), 0);
    }
    for (int i = 0; i < SH_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SH_THREADS; i++)
        if (a[i].failures)
            fail_msg("thread %d: %d failed or mismatching calls", i, a[i].failures);
    abi_close(h);
    /* Last round of each thread/stripe, after reopening. */
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    for (int i = 0; i < SH_THREADS; i++)
        for (int r = 90; r < 150; r++)
            abi_expect_pattern(h, (uint64)(r % 60) * 32 + (uint64)i * 8, 8,
                               (uint32_t)(i * 1000 + r));
    abi_close(h);
}

/* ---- locking ---------------------------------------------------------------------------- */

static void test_locked(void **state)
{
    (void)state;
    const char *path = abi_path("locked.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h1 = abi_open(path, 0);
    int dummy;
    VixDiskLibHandle h2 = (VixDiskLibHandle)(void *)&dummy;
    ABI_ERR(VixDiskLib_Open(abi_conn(), path, 0, &h2), VIX_E_FILE_ALREADY_LOCKED);
    assert_null(h2);
    /* From another connection too. */
    VixDiskLibConnection c2 = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c2));
    h2 = (VixDiskLibHandle)(void *)&dummy;
    VixError e = VixDiskLib_Open(c2, path, 0, &h2);
    if (e == VIX_OK)
        VixDiskLib_Close(h2);
    ABI_OK(VixDiskLib_Disconnect(c2));
    ABI_ERR(e, VIX_E_FILE_ALREADY_LOCKED);
    assert_null(h2);
    /* The first handle is unaffected. */
    abi_write_pattern(h1, 1, 1, 1);
    abi_close(h1);

    /* Released on Close. */
    h1 = abi_open(path, 0);
    abi_expect_pattern(h1, 1, 1, 1);
    abi_close(h1);

    /* A disk open for writing cannot be unlinked from under its user. */
    h1 = abi_open(path, 0);
    ABI_FAILS(VixDiskLib_Unlink(abi_conn(), path));
    assert_true(abi_exists(path));
    abi_expect_pattern(h1, 1, 1, 1);
    abi_close(h1);

    /* Readers share. */
    h1 = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    h2 = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h2, 1, 1, 1);
    abi_close(h2);
    abi_close(h1);

    /* A child opened read-write locks itself, not the read-only parent. */
    const char *child = abi_path("lchild.vmdk");
    h1 = abi_open(path, 0);
    ABI_OK(VixDiskLib_CreateChild(h1, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h1);
    h1 = abi_open(child, 0);
    h2 = (VixDiskLibHandle)(void *)&dummy;
    ABI_ERR(VixDiskLib_Open(abi_conn(), child, 0, &h2), VIX_E_FILE_ALREADY_LOCKED);
    assert_null(h2);
    h2 = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_close(h2);
    abi_close(h1);
}

/* ---- error text, transport modes ------------------------------------------------------- */

static void test_error_text(void **state)
{
    (void)state;
    static const VixError known[] = {
        VIX_OK, VIX_E_FAIL, VIX_E_OUT_OF_MEMORY, VIX_E_INVALID_ARG, VIX_E_FILE_NOT_FOUND,
        VIX_E_NOT_SUPPORTED, VIX_E_FILE_ERROR, VIX_E_DISK_FULL, VIX_E_CANCELLED,
        VIX_E_FILE_READ_ONLY, VIX_E_FILE_ALREADY_EXISTS, VIX_E_FILE_ALREADY_LOCKED,
        VIX_E_BUFFER_TOOSMALL, VIX_E_INVALID_HANDLE, VIX_E_DISK_INVAL, VIX_E_DISK_NOINIT,
        VIX_E_DISK_OUTOFRANGE, VIX_E_DISK_CID_MISMATCH, VIX_E_DISK_INVALIDCHAIN,
        VIX_E_DISK_KEY_NOTFOUND, VIX_E_DISK_INVALIDDISK, VIX_E_CANNOT_CONNECT_TO_HOST,
        VIX_ASYNC, VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, VIX_E_NET_HTTP_GENERIC,
    };
    static const VixError unknown[] = { 12345, 65535, 9999, ((VixError)1 << 40) | 4242,
                                        UINT64_MAX };
    char *u = VixDiskLib_GetErrorText(12345, NULL);
    assert_non_null(u);
    assert_true(u[0] != '\0');
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char *t = VixDiskLib_GetErrorText(known[i], NULL);
        if (!t || !t[0])
            fail_msg("no error text for %lu", (unsigned long)known[i]);
        /* A known code has its own text, not the generic one. */
        if (known[i] != VIX_OK && strcmp(t, u) == 0)
            fail_msg("code %lu has the unknown-code text '%s'", (unsigned long)known[i], t);
        VixDiskLib_FreeErrorText(t);
    }
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char *t = VixDiskLib_GetErrorText(unknown[i], NULL);
        if (!t || !t[0])
            fail_msg("no error text for unknown code %lu", (unsigned long)unknown[i]);
        VixDiskLib_FreeErrorText(t);
    }
    char *a = VixDiskLib_GetErrorText(VIX_E_DISK_OUTOFRANGE, NULL);
    char *b = VixDiskLib_GetErrorText(VIX_E_BUFFER_TOOSMALL, NULL);
    assert_string_not_equal(a, b);
    /* Each call returns a separate allocation. */
    char *a2 = VixDiskLib_GetErrorText(VIX_E_DISK_OUTOFRANGE, NULL);
    assert_ptr_not_equal(a, a2);
    assert_string_equal(a, a2);
    VixDiskLib_FreeErrorText(a);
    VixDiskLib_FreeErrorText(a2);
    VixDiskLib_FreeErrorText(b);
    VixDiskLib_FreeErrorText(u);
    VixDiskLib_FreeErrorText(NULL);
}

static void test_transport_modes(void **state)
{
    (void)state;
    const char *m = VixDiskLib_ListTransportModes();
    assert_non_null(m);
    /* A colon-separated list containing "file". */
    char copy[256];
    snprintf(copy, sizeof copy, "%s", m);
    int file = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok;
         tok = strtok_r(NULL, ":", &save))
        file += strcmp(tok, "file") == 0;
    assert_int_equal(file, 1);
    assert_string_equal(m, VixDiskLib_ListTransportModes());

    const char *path = abi_path("t.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    const char *t = VixDiskLib_GetTransportMode(h);
    assert_non_null(t);
    assert_string_equal(t, "file");
    abi_close(h);
}

/* ---- unlink ----------------------------------------------------------------------------------- */

static void test_unlink_split(void **state)
{
    (void)state;
    const char *path = abi_path("big.vmdk");
    abi_create_ok(path, VIXDISKLIB_DISK_SPLIT_SPARSE, BIG_SPLIT_CAP);
    VixDiskLibHandle h = abi_open(path, 0);
    abi_write_pattern(h, 0, 1, 1);
    abi_write_pattern(h, 4194304 + 10, 4, 2);           /* in the second extent */
    abi_write_pattern(h, BIG_SPLIT_CAP - 1, 1, 3);      /* in the third */
    abi_write_pattern(h, 4192256 - 4, 8, 4);            /* across the first boundary */
    abi_expect_pattern(h, 4192256 - 4, 8, 4);
    const VixDiskLibBlock across[] = { { 4192256 - 128, 256 } };
    expect_blocks(h, 4192256 - 128, 256, 128, across, 1);
    abi_close(h);
    size_t n = count_files(abi_dir());
    if (n < 4)
        fail_msg("a %u-sector split disk has %zu files, expected a descriptor and 3 extents",
                 BIG_SPLIT_CAP, n);
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 4194304 + 10, 4, 2);
    abi_expect_pattern(h, 4192256 - 4, 8, 4);
    abi_close(h);

    ABI_OK(VixDiskLib_Unlink(abi_conn(), path));
    assert_int_equal(count_files(abi_dir()), 0);
    ABI_FAILS(VixDiskLib_Unlink(abi_conn(), path));

    /* Split flat. */
    abi_create_ok(abi_path("sf.vmdk"), VIXDISKLIB_DISK_SPLIT_FLAT, 4096);
    assert_true(count_files(abi_dir()) >= 2);
    ABI_OK(VixDiskLib_Unlink(abi_conn(), abi_path("sf.vmdk")));
    assert_int_equal(count_files(abi_dir()), 0);
}

static void test_unlink_other(void **state)
{
    (void)state;
    /* Deleting a child leaves the parent intact. */
    const char *base = abi_path("ubase.vmdk");
    const char *child = abi_path("uchild.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_FLAT, 2048);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 100, 10, 1);
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_SPLIT_SPARSE, NULL, NULL));
    abi_close(h);
    size_t nbase = count_stem(abi_dir(), "ubase");
    assert_true(count_stem(abi_dir(), "uchild") >= 2);
    ABI_OK(VixDiskLib_Unlink(abi_conn(), child));
    assert_int_equal(count_stem(abi_dir(), "uchild"), 0);
    assert_int_equal(count_stem(abi_dir(), "ubase"), nbase);
    h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 100, 10, 1);
    abi_close(h);

    /* Missing files and files that are not disks are left alone. */
    ABI_FAILS(VixDiskLib_Unlink(abi_conn(), abi_path("missing.vmdk")));
    abi_write_file(abi_path("notes.txt"), "not a disk\n");
    ABI_FAILS(VixDiskLib_Unlink(abi_conn(), abi_path("notes.txt")));
    assert_true(abi_exists(abi_path("notes.txt")));
    ABI_ERR(VixDiskLib_Unlink(abi_conn(), NULL), VIX_E_INVALID_ARG);
}

/* ---- rename ------------------------------------------------------------------------------------ */

static void test_rename_monolithic(void **state)
{
    (void)state;
    const char *a = abi_path("alpha.vmdk");
    const char *b = abi_path("beta.vmdk");
    abi_create_ok(a, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(a, 0);
    abi_write_pattern(h, 0, 9, 1);
    abi_write_pattern(h, CAP - 5, 5, 2);
    ABI_OK(VixDiskLib_WriteMetadata(h, "openvddk.name", "alpha"));
    abi_close(h);

    ABI_OK(VixDiskLib_Rename(a, b));
    assert_false(abi_exists(a));
    assert_true(abi_exists(b));
    assert_int_equal(count_files(abi_dir()), 1);
    h = abi_open(b, 0);
    assert_int_equal(abi_capacity(h), CAP);
    abi_expect_pattern(h, 0, 9, 1);
    abi_expect_pattern(h, CAP - 5, 5, 2);
    char val[16];
    ABI_OK(VixDiskLib_ReadMetadata(h, "openvddk.name", val, sizeof val, NULL));
    assert_string_equal(val, "alpha");
    abi_close(h);
    VixDiskLibHandle none = NULL;
    ABI_ERR(VixDiskLib_Open(abi_conn(), a, 0, &none), VIX_E_FILE_NOT_FOUND);
}

static void test_rename_split_flat(void **state)
{
    (void)state;
    static const struct {
        VixDiskLibDiskType type;
        uint64 cap;
        const char *from, *to;
        int subdir;
    } cases[] = {
        { VIXDISKLIB_DISK_SPLIT_SPARSE, BIG_SPLIT_CAP, "ss", "ss2", 0 },
        { VIXDISKLIB_DISK_SPLIT_SPARSE, BIG_SPLIT_CAP, "ssd", "moved", 1 },
        { VIXDISKLIB_DISK_MONOLITHIC_FLAT, 4096, "mf", "mf2", 0 },
        { VIXDISKLIB_DISK_SPLIT_FLAT, 4096, "sf", "sf2", 0 },
        { VIXDISKLIB_DISK_VMFS_FLAT, 4096, "vf", "vf2", 0 },
        { VIXDISKLIB_DISK_VMFS_THIN, 4096, "vt", "vt2", 0 },
        { VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096, "ms", "ms2", 1 },
    };
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/sub", abi_dir());
    assert_int_equal(mkdir(sub, 0700), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        int nf = snprintf(from, sizeof from, "%s/%s.vmdk", abi_dir(), cases[i].from);
        int nt = snprintf(to, sizeof to, "%s/%s.vmdk", cases[i].subdir ? sub : abi_dir(),
                          cases[i].to);
        assert_true(nf > 0 && nf < (int)sizeof from && nt > 0 && nt < (int)sizeof to);
        const char *todir = cases[i].subdir ? sub : abi_dir();
        abi_create_ok(from, cases[i].type, cases[i].cap);
        VixDiskLibHandle h = abi_open(from, 0);
        abi_write_pattern(h, 0, 3, (uint32_t)i);
        abi_write_pattern(h, cases[i].cap - 2, 2, (uint32_t)i + 100);
        abi_close(h);
        size_t nfiles = count_stem(abi_dir(), cases[i].from);
        assert_true(nfiles >= 1);

        VixError e = VixDiskLib_Rename(from, to);
        if (e != VIX_OK)
            fail_msg("Rename %s -> %s: %lu (%s) %s", from, to, (unsigned long)e,
                     abi_err_text(e), abi_last_warn());
        /* Old names gone, the same number of files under the new name. */
        if (count_stem(abi_dir(), cases[i].from) != 0)
            fail_msg("case %zu: files named %s* remain after the rename", i, cases[i].from);
        if (count_stem(todir, cases[i].to) != nfiles)
            fail_msg("case %zu: %zu files named %s*, expected %zu", i,
                     count_stem(todir, cases[i].to), cases[i].to, nfiles);
        h = abi_open(to, 0);
        assert_int_equal(abi_capacity(h), cases[i].cap);
        abi_expect_pattern(h, 0, 3, (uint32_t)i);
        abi_expect_pattern(h, cases[i].cap - 2, 2, (uint32_t)i + 100);
        abi_close(h);
        VixDiskLibHandle none = NULL;
        ABI_FAILS(VixDiskLib_Open(abi_conn(), from, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &none));
        assert_null(none);
        /* Clean up the big ones as we go. */
        ABI_OK(VixDiskLib_Unlink(abi_conn(), to));
        assert_int_equal(count_stem(todir, cases[i].to), 0);
    }
}

/* A child renamed in its directory, then moved to another directory:
 * either the rename is refused (the child stays usable where it was) or
 * the renamed child still opens as the same two-link chain. */
static void test_rename_child(void **state)
{
    (void)state;
    const char *base = abi_path("pbase.vmdk");
    const char *child = abi_path("pchild.vmdk");
    const char *renamed = abi_path("prenamed.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 0, 4, 1);
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);
    h = abi_open(child, 0);
    abi_write_pattern(h, 100, 4, 2);
    abi_close(h);

    /* Same directory. */
    ABI_OK(VixDiskLib_Rename(child, renamed));
    assert_false(abi_exists(child));
    h = abi_open(renamed, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 2);
    VixDiskLib_FreeInfo(info);
    abi_expect_pattern(h, 0, 4, 1);
    abi_expect_pattern(h, 100, 4, 2);
    abi_close(h);

    /* Another directory: the parent is now at a different relative path. */
    char sub[PATH_MAX], moved[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/sub", abi_dir());
    assert_int_equal(mkdir(sub, 0700), 0);
    int n = snprintf(moved, sizeof moved, "%s/moved.vmdk", sub);
    assert_true(n > 0 && n < (int)sizeof moved);
    VixError e = VixDiskLib_Rename(renamed, moved);
    const char *now = e == VIX_OK ? moved : renamed;
    if (e == VIX_OK)
        assert_false(abi_exists(renamed));
    VixDiskLibHandle h2 = NULL;
    VixError oe = VixDiskLib_Open(abi_conn(), now, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h2);
    if (oe != VIX_OK)
        fail_msg("Rename(child -> %s) returned %lu, and %s then fails to open: %lu (%s); %s",
                 moved, (unsigned long)e, now, (unsigned long)oe, abi_err_text(oe),
                 abi_last_warn());
    abi_track(h2);
    info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h2, &info));
    assert_int_equal(info->numLinks, 2);
    VixDiskLib_FreeInfo(info);
    abi_expect_pattern(h2, 0, 4, 1);
    abi_expect_pattern(h2, 100, 4, 2);
    abi_close(h2);
}

static void test_rename_errors(void **state)
{
    (void)state;
    const char *a = abi_path("ra.vmdk");
    const char *b = abi_path("rb.vmdk");
    abi_create_ok(a, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    abi_create_ok(b, VIXDISKLIB_DISK_MONOLITHIC_FLAT, 2048);
    VixDiskLibHandle h = abi_open(a, 0);
    abi_write_pattern(h, 0, 1, 1);
    abi_close(h);
    h = abi_open(b, 0);
    abi_write_pattern(h, 0, 1, 2);
    abi_close(h);
    /* Onto an existing disk: refused, both intact. */
    ABI_FAILS(VixDiskLib_Rename(a, b));
    h = abi_open(a, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 0, 1, 1);
    abi_close(h);
    h = abi_open(b, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 0, 1, 2);
    abi_close(h);
    ABI_FAILS(VixDiskLib_Rename(abi_path("missing.vmdk"), abi_path("x.vmdk")));
    assert_false(abi_exists(abi_path("x.vmdk")));
    ABI_ERR(VixDiskLib_Rename(NULL, b), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Rename(a, NULL), VIX_E_INVALID_ARG);
}

/* ---- names a descriptor cannot hold ------------------------------------------------------------ */

/* '"', a newline or another control character in a new disk's name:
 * Create (every type), CreateChild, Clone and Rename refuse it before any
 * file is made, with VIX_E_INVALID_ARG and a message naming the file
 * (control characters escaped) and the character. */
static void test_bad_names(void **state)
{
    (void)state;
    const char *base = abi_path("base.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 7, 3, 11);
    abi_close(h);
    char **before;
    size_t nbefore = abi_list(abi_dir(), &before);
    static const struct {
        const char *name, *shown, *what;
    } bad[] = {
        { "q\"uote.vmdk", "q\"uote.vmdk", "may not contain '\"'" },
        { "new\nline.vmdk", "new\\nline.vmdk", "may not contain a newline" },
        { "cr\rx.vmdk", "cr\\rx.vmdk", "may not contain a carriage return" },
        { "tab\tx.vmdk", "tab\\tx.vmdk", "may not contain a control character (0x09)" },
        { "esc\x1b" "x.vmdk", "esc\\x1bx.vmdk", "may not contain a control character (0x1b)" },
    };
    static const VixDiskLibDiskType types[] = {
        VIXDISKLIB_DISK_MONOLITHIC_SPARSE, VIXDISKLIB_DISK_MONOLITHIC_FLAT,
        VIXDISKLIB_DISK_SPLIT_SPARSE, VIXDISKLIB_DISK_SPLIT_FLAT, VIXDISKLIB_DISK_VMFS_FLAT,
        VIXDISKLIB_DISK_VMFS_THIN, VIXDISKLIB_DISK_VMFS_SPARSE,
        VIXDISKLIB_DISK_STREAM_OPTIMIZED,
    };
#define EXPECT_NAMED(i)                                                                 \
    do {                                                                                \
        if (!strstr(abi_last_warn(), bad[i].shown) || !strstr(abi_last_warn(), bad[i].what)) \
            fail_msg("the warning does not name %s and say \"%s\": %s", bad[i].shown,     \
                     bad[i].what, abi_last_warn());                                     \
    } while (0)
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = abi_path(bad[i].name);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            ABI_ERR(abi_create(p, types[t], 2048), VIX_E_INVALID_ARG);
            EXPECT_NAMED(i);
        }
        h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
        ABI_ERR(VixDiskLib_CreateChild(h, p, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
                VIX_E_INVALID_ARG);
        EXPECT_NAMED(i);
        ABI_ERR(VixDiskLib_CreateChild(h, p, VIXDISKLIB_DISK_SPLIT_SPARSE, NULL, NULL),
                VIX_E_INVALID_ARG);
        EXPECT_NAMED(i);
        abi_close(h);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            VixDiskLibCreateParams cp = abi_create_params(types[t], 2048);
            ABI_ERR(VixDiskLib_Clone(abi_conn(), p, abi_conn(), base, &cp, NULL, NULL, FALSE),
                    VIX_E_INVALID_ARG);
            EXPECT_NAMED(i);
        }
        ABI_ERR(VixDiskLib_Rename(base, p), VIX_E_INVALID_ARG);
        EXPECT_NAMED(i);
    }
#undef EXPECT_NAMED
    /* Nothing was made, renamed or left behind; the source is intact. */
    char **after;
    size_t nafter = abi_list(abi_dir(), &after);
    assert_int_equal(nafter, nbefore);
    for (size_t i = 0; i < nafter; i++)
        assert_string_equal(after[i], before[i]);
    abi_free_list(before, nbefore);
    abi_free_list(after, nafter);
    h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 7, 3, 11);
    abi_close(h);
}

/* ---- clone ------------------------------------------------------------------------------------ */

/* base (sparse) + child with overlapping writes; m gets the chain's view. */
static void make_chain(struct model *m, const char *base, const char *child)
{
    model_init(m, CAP);
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(base, 0);
    model_write(h, m, 0, 10, 1);
    model_write(h, m, 5000, 201, 2);
    model_write(h, m, CAP - 1, 1, 3);
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);
    h = abi_open(child, 0);
    model_write(h, m, 5100, 201, 4);
    model_write(h, m, 10000, 1, 5);
    model_write(h, m, 16000, 300, 6);
    abi_close(h);
}

static void test_clone_types(void **state)
{
    (void)state;
    struct model m;
    const char *base = abi_path("kbase.vmdk");
    const char *child = abi_path("kchild.vmdk");
    make_chain(&m, base, child);
    for (size_t t = 0; t < NCREATABLE; t++) {
        char name[64];
        snprintf(name, sizeof name, "clone-%s.vmdk", creatable[t].name);
        const char *dst = abi_path(name);
        VixDiskLibCreateParams cp;
        memset(&cp, 0, sizeof cp);
        cp.diskType = creatable[t].type;
        cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
        cp.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
        cp.capacity = CAP;
        struct progress pr;
        progress_init(&pr, 0);
        ABI_OK(VixDiskLib_Clone(abi_conn(), dst, abi_conn(), child, &cp, progress_cb, &pr,
                                FALSE));
        if (pr.bad)
            fail_msg("%s: progress percentages out of range or decreasing", name);
        if (pr.calls < 2 || pr.last != 100)
            fail_msg("%s: %d progress calls, last %d%% (expected at least 2, ending at 100)",
                     name, pr.calls, pr.last);
        assert_int_equal(pr.other_thread, 0);

        VixDiskLibHandle h = abi_open(dst, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
        VixDiskLibInfo *info = NULL;
        ABI_OK(VixDiskLib_GetInfo(h, &info));
        assert_int_equal(info->capacity, CAP);
        assert_int_equal(info->numLinks, 1);
        assert_null(info->parentFileNameHint);
        VixDiskLib_FreeInfo(info);
        model_verify(h, &m, name);
        abi_close(h);
    }
    /* The source chain is unchanged. */
    VixDiskLibHandle h = abi_open(child, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    model_verify(h, &m, "source chain after cloning");
    abi_close(h);
    model_free(&m);
}

static void test_clone_cancel(void **state)
{
    (void)state;
    struct model m;
    const char *base = abi_path("xbase.vmdk");
    const char *child = abi_path("xchild.vmdk");
    make_chain(&m, base, child);
    size_t before = count_files(abi_dir());
    static const VixDiskLibDiskType types[] = { VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                                VIXDISKLIB_DISK_SPLIT_FLAT,
                                                VIXDISKLIB_DISK_MONOLITHIC_FLAT };
    for (size_t t = 0; t < 3; t++) {
        for (int at = 1; at <= 2; at++) {
            const char *dst = abi_path("cancelled.vmdk");
            VixDiskLibCreateParams cp;
            memset(&cp, 0, sizeof cp);
            cp.diskType = types[t];
            cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
            cp.capacity = CAP;
            struct progress pr;
            progress_init(&pr, at);
            ABI_ERR(VixDiskLib_Clone(abi_conn(), dst, abi_conn(), child, &cp, progress_cb, &pr,
                                     FALSE),
                    VIX_E_CANCELLED);
            assert_int_equal(pr.calls, at);
            /* No destination file left behind. */
            if (count_files(abi_dir()) != before)
                fail_msg("type %d, cancel at call %d: %zu files, expected %zu",
                         (int)types[t], at, count_files(abi_dir()), before);
            assert_false(abi_exists(dst));
        }
    }
    /* Nothing stale either: the same destination clones fine afterwards. */
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    cp.capacity = CAP;
    ABI_OK(VixDiskLib_Clone(abi_conn(), abi_path("cancelled.vmdk"), abi_conn(), child, &cp,
                            NULL, NULL, FALSE));
    VixDiskLibHandle h = abi_open(abi_path("cancelled.vmdk"), VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    model_verify(h, &m, "clone after cancelled clones");
    abi_close(h);
    model_free(&m);
}

static void test_clone_overwrite(void **state)
{
    (void)state;
    struct model m;
    const char *base = abi_path("obase.vmdk");
    const char *child = abi_path("ochild.vmdk");
    make_chain(&m, base, child);
    const char *dst = abi_path("odst.vmdk");
    abi_create_ok(dst, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(dst, 0);
    abi_write_pattern(h, 0, 1, 77);
    abi_close(h);

    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
    cp.capacity = CAP;
    /* overWrite FALSE: refused, destination untouched. */
    ABI_FAILS(VixDiskLib_Clone(abi_conn(), dst, abi_conn(), child, &cp, NULL, NULL, FALSE));
    h = abi_open(dst, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    assert_int_equal(abi_capacity(h), 2048);
    abi_expect_pattern(h, 0, 1, 77);
    abi_close(h);
    /* overWrite TRUE: replaced. */
    ABI_OK(VixDiskLib_Clone(abi_conn(), dst, abi_conn(), child, &cp, NULL, NULL, TRUE));
    h = abi_open(dst, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    assert_int_equal(abi_capacity(h), CAP);
    model_verify(h, &m, "overwritten clone");
    abi_close(h);
    /* A missing source leaves no destination. */
    ABI_FAILS(VixDiskLib_Clone(abi_conn(), abi_path("nodst.vmdk"), abi_conn(),
                               abi_path("nosrc.vmdk"), &cp, NULL, NULL, FALSE));
    assert_false(abi_exists(abi_path("nodst.vmdk")));
    model_free(&m);
}

/* ---- main --------------------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, abi_setup, abi_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_connect_local_forms),
        T(test_connect_short_structs),
        T(test_connect_remote_fails),
        T(test_connect_params_ownership),
        T(test_prepare_end_cleanup),
        T(test_create_types),
        T(test_create_errors),
        T(test_open_errors),
        T(test_out_of_range),
        T(test_zero_sectors),
        T(test_read_only_handle),
        T(test_unbuffered),
        T(test_metadata_read),
        T(test_metadata_keys),
        T(test_metadata_hostile_values),
        T(test_qab_sparse),
        T(test_qab_flat),
        T(test_qab_chain),
        T(test_qab_bad_args),
        T(test_qab_past_capacity),
        T(test_info_chain),
        T(test_async_64),
        T(test_async_flush_waits),
        T(test_async_close_drains),
        T(test_bad_handles),
        T(test_bad_connections),
        T(test_handle_churn),
        T(test_concurrent_open_close),
        T(test_same_handle_threads),
        T(test_locked),
        T(test_error_text),
        T(test_transport_modes),
        T(test_unlink_split),
        T(test_unlink_other),
        T(test_rename_monolithic),
        T(test_rename_split_flat),
        T(test_rename_child),
        T(test_rename_errors),
        T(test_bad_names),
        T(test_clone_types),
        T(test_clone_cancel),
        T(test_clone_overwrite),
    };
    abi_filters(argc, argv);
    return cmocka_run_group_tests(tests, abi_lib_setup, abi_lib_teardown);
}
