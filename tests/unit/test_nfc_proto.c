/* test_nfc_proto.c - NFC frame layouts against the bytes of the
 * reference transcript (../shared/reference/nfc-protocol.md, section 6),
 * and the checks the client applies to read fragments and acks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nfc/nfc_proto.h"

static void hex_eq(const unsigned char *got, const char *want_hex, size_t n)
{
    unsigned char want[256];
    size_t k = 0;
    for (const char *p = want_hex; *p && k < sizeof want;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(p, "%2x", &v), 1);
        want[k++] = (unsigned char)v;
        p += 2;
    }
    assert_int_equal(k, n);
    assert_memory_equal(got, want, n);
}

static void test_headers(void **st)
{
    (void)st;
    unsigned char h[NFC_HDR_LEN];
    nfc_put_hdr(h, NFC_AIO_OPEN_FILE, NFC_OPEN_FILE_LEN, 3);
    hex_eq(h, "7a da 00 a1 04 00 00 00 3c 00 00 00 03 00 00 00", sizeof h);
    struct nfc_hdr d;
    assert_int_equal(nfc_get_hdr(h, &d), 0);
    assert_int_equal(d.type, 4);
    assert_int_equal(d.size, 60);
    assert_int_equal(d.op, 3);
    h[0] = 0x7b;
    assert_int_equal(nfc_get_hdr(h, &d), -1);
    char nb[16];
    assert_string_equal(nfc_aio_name(NFC_AIO_QAB, nb), "QUERY_ALLOCATED_BLOCKS");
    assert_string_equal(nfc_aio_name(17, nb), "type 17");
    assert_int_equal(nfc_reply_len(NFC_AIO_IO), 44);
    assert_int_equal(nfc_reply_len(NFC_AIO_ERROR), -1);
    assert_int_equal(nfc_reply_len(6), -1);
}

static void test_open_session_and_file(void **st)
{
    (void)st;
    unsigned char p[NFC_MAX_FIXED];
    nfc_put_open_session(p, 65536, 1);
    hex_eq(p, "00 00 00 00 00 00 01 00 01 00 00 00 00 00 00 00", NFC_OPEN_SESSION_LEN);
    nfc_put_open_file(p, 25, NFC_OPEN_RO);
    unsigned char want[60] = { 0x19 };
    want[16] = 2;
    want[20] = 0x1e;
    assert_memory_equal(p, want, 60);
    nfc_put_open_file(p, 25, NFC_OPEN_RW);
    assert_int_equal(p[20], 0x1a);

    /* The transcript's reply: handle 0x12345678, 16 GiB, 512-byte
     * sectors, 2088/255/63. */
    unsigned char r[60] = { 0 };
    static const unsigned char tail[] = {
        0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0, 2, 0, 0, 0, 0x1e, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 0x28, 8, 0, 0, 0xff, 0, 0, 0, 0x3f, 0, 0, 0 };
    memcpy(r + 8, tail, sizeof tail);
    struct nfc_open_reply o;
    nfc_get_open_reply(r, &o);
    assert_int_equal(o.handle, 0x12345678);
    assert_int_equal(o.type, 2);
    assert_int_equal(o.flags, 0x1e);
    assert_int_equal(o.capacity, 16ull << 30);
    assert_int_equal(o.sector_size, 512);
    assert_int_equal(o.cylinders, 2088);
    assert_int_equal(o.heads, 255);
    assert_int_equal(o.sectors, 63);
}

static void test_io(void **st)
{
    (void)st;
    unsigned char p[NFC_IO_LEN];
    struct nfc_io rq = { 0x12345678, NFC_DIR_READ, 0, 0, 65536, 0, 65536, 65536, 0 };
    nfc_put_io(p, &rq);
    hex_eq(p, "78 56 34 12 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
              "00 00 01 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 00 00", sizeof p);
    /* codec in the high half of the direction word */
    rq.codec = 2;
    nfc_put_io(p, &rq);
    assert_int_equal(p[12], 2);

    /* The transcript's read reply. */
    static const unsigned char rep[44] = { [8] = 1, [26] = 1, [34] = 1, [38] = 1 };
    struct nfc_io f;
    nfc_get_io(rep, &f);
    assert_int_equal(f.dir, 1);
    assert_int_equal(f.total, 65536);
    assert_int_equal(f.frag_len, 65536);
    assert_int_equal(f.extra, 65536);
    assert_null(nfc_check_read_frag(&f, 0, 65536, 65536));
    /* wrong: another offset, a fragment that is not on a buffer boundary,
     * a short middle fragment, raw with extra != length, bad codec */
    assert_non_null(nfc_check_read_frag(&f, 512, 65536, 65536));
    struct nfc_io g = { 0, NFC_DIR_READ, 0, 0, 200000, 65536, 65536, 65536, 0 };
    assert_null(nfc_check_read_frag(&g, 0, 200000, 65536));
    g.frag_off = 1000;
    assert_non_null(nfc_check_read_frag(&g, 0, 200000, 65536));
    g.frag_off = 196608;
    g.frag_len = g.extra = 200000 - 196608;
    assert_null(nfc_check_read_frag(&g, 0, 200000, 65536));
    g.frag_len = g.extra = 65536;
    assert_non_null(nfc_check_read_frag(&g, 0, 200000, 65536));
    g = (struct nfc_io){ 0, NFC_DIR_READ, 0, 0, 65536, 0, 65536, 100, 0 };
    assert_non_null(nfc_check_read_frag(&g, 0, 65536, 65536));
    g.codec = 1;
    assert_null(nfc_check_read_frag(&g, 0, 65536, 65536));
    g.codec = 4;
    assert_non_null(nfc_check_read_frag(&g, 0, 65536, 65536));
    g.codec = 0;
    g.extra = 65536;
    g.dir = NFC_DIR_WRITE;
    assert_non_null(nfc_check_read_frag(&g, 0, 65536, 65536));

    struct nfc_io ack = { 0, NFC_DIR_WRITE, 0, 4096, 8192, 0, 8192, 0, 0 };
    assert_null(nfc_check_write_ack(&ack, 4096, 8192));
    assert_non_null(nfc_check_write_ack(&ack, 0, 8192));
    ack.frag_len = 4096;
    assert_non_null(nfc_check_write_ack(&ack, 4096, 8192));
}

static void test_ddb_and_qab(void **st)
{
    (void)st;
    unsigned char p[NFC_QAB_LEN];
    nfc_put_ddb(p, 0x12345678, 11);
    hex_eq(p, "78 56 34 12 00 00 00 00 0b 00 00 00 00 00 00 00", NFC_DDB_LEN);
    unsigned char r[16] = { [12] = 8 };
    assert_int_equal(nfc_get_ddb_value_len(r), 8);

    nfc_put_qab(p, 0x12345678, 65536, 0, 262144);
    hex_eq(p, "78 56 34 12 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00"
              "00 00 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00",
           NFC_QAB_LEN);
    assert_int_equal(nfc_get_qab_count(p), 262144);
    assert_int_equal(nfc_qab_bitmap_len(262144), 32768);
    assert_int_equal(nfc_qab_bitmap_len(1), 4);
    assert_int_equal(nfc_qab_bitmap_len(33), 8);
    assert_int_equal(nfc_qab_bitmap_len(0), 0);
    unsigned char bm[4] = { 0x05, 0x80, 0, 0 };
    assert_int_equal(nfc_qab_bit(bm, 0), 1);
    assert_int_equal(nfc_qab_bit(bm, 1), 0);
    assert_int_equal(nfc_qab_bit(bm, 2), 1);
    assert_int_equal(nfc_qab_bit(bm, 15), 1);
    unsigned char e[16] = { 0x0b };
    assert_int_equal(nfc_get_error_code(e, 16), 0x0b);
    assert_int_equal(nfc_get_error_code(e, 2), 0);
}

static void test_classic_and_authd(void **st)
{
    (void)st;
    unsigned char f[NFC_CLASSIC_LEN];
    nfc_classic_init(f, NFC_C_VERSION);
    assert_int_equal(f[0], 0x33);
    for (size_t i = 1; i < sizeof f; i++)
        assert_int_equal(f[i], 0);
    assert_int_equal(NFC_C_CLIENT_RANDOM, 0x2b);
    assert_int_equal(NFC_C_SESSION_PARAMS, 0x21);
    assert_int_equal(NFC_C_PARAMS_REPLY, 0x24);
    assert_int_equal(NFC_C_CONN_DATA, 0x36);
    assert_int_equal(NFC_C_FEATURES, 0x37);
    assert_int_equal(NFC_C_AIO_OPEN, 0x34);
    assert_int_equal(nfc_authd_code("220 VMware Authentication Daemon Version 1.10"), 220);
    assert_int_equal(nfc_authd_code("200 Connect ha-nfc"), 200);
    assert_int_equal(nfc_authd_code("530"), 530);
    assert_int_equal(nfc_authd_code("2000 x"), -1);
    assert_int_equal(nfc_authd_code("abc"), -1);
    assert_int_equal(nfc_authd_code(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_open_session_and_file),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_ddb_and_qab),
        cmocka_unit_test(test_classic_and_authd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
