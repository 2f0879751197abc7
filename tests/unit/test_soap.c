/* test_soap.c - SOAP replies and NFC tickets as src/vsphere reads them,
 * from well-formed to corrupt: faults become the right vd_err codes,
 * anything that is not a SOAP envelope (or an empty one) is refused with
 * a message, and a ticket lacking what the NFC client needs is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "vsphere/vs_priv.h"

#define ENV(body)                                                                          \
    "<?xml version=\"1.0\"?><soapenv:Envelope "                                             \
    "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "                        \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>" body          \
    "</soapenv:Body></soapenv:Envelope>"

static struct vs_session S = { .peer = (char *)"vc.test:443" };

static int parse(const char *xml, long status, xmlDoc **doc, xmlNode **reply, int *relogin)
{
    *relogin = 0;
    return vs_soap_parse(&S, "Method", xml, xml ? strlen(xml) : 0, status, doc, reply, relogin);
}

static int ticket(const char *xml, struct vs_ticket *t)
{
    xmlDoc *doc;
    xmlNode *r;
    int relogin;
    int rc = parse(xml, 200, &doc, &r, &relogin);
    if (rc < 0)
        return rc;
    rc = vs_parse_ticket(&S, "NfcGetVmFiles", r, t);
    xmlFreeDoc(doc);
    return rc;
}

static void test_ticket_vcenter(void **st)
{
    (void)st;
    struct vs_ticket t = { 0 };
    assert_int_equal(ticket(ENV("<NfcGetVmFilesResponse xmlns=\"urn:vim25\"><returnval "
                                "xsi:type=\"HostServiceTicket\"><host>10.0.0.5</host><port>902"
                                "</port><service>vpxa-nfc</service><serviceVersion>1.1"
                                "</serviceVersion><sessionId>52cd-1</sessionId><sslThumbprint>"
                                "AA:BB</sslThumbprint></returnval></NfcGetVmFilesResponse>"),
                            &t), 0);
    assert_string_equal(t.host, "10.0.0.5");
    assert_int_equal(t.port, 902);
    assert_string_equal(t.service, "vpxa-nfc");
    assert_string_equal(t.session, "52cd-1");
    assert_string_equal(t.thumbprint, "AA:BB");
    assert_string_equal(t.version, "1.1");
    vs_ticket_free(&t);
}

static void test_ticket_esxi(void **st)
{
    (void)st;
    /* A host's own ticket names no host; a missing or silly port is 902. */
    struct vs_ticket t = { 0 };
    assert_int_equal(ticket(ENV("<R xmlns=\"urn:vim25\"><returnval><port>99999</port><service>"
                                "nfc</service><sessionId>x</sessionId></returnval></R>"), &t), 0);
    assert_null(t.host);
    assert_int_equal(t.port, 902);
    assert_null(t.thumbprint);
    vs_ticket_free(&t);
    assert_int_equal(ticket(ENV("<R><returnval><host></host><service>nfc</service><sessionId>"
                                "x</sessionId></returnval></R>"), &t), 0);
    assert_null(t.host);
    vs_ticket_free(&t);
}

static void test_ticket_incomplete(void **st)
{
    (void)st;
    struct vs_ticket t = { 0 };
    assert_int_equal(ticket(ENV("<R><returnval><service>nfc</service></returnval></R>"), &t),
                     -VD_E_NET_CONNECT);
    assert_non_null(strstr(vd_err_msg(), "without sessionId"));
    vs_ticket_free(&t);
    assert_int_equal(ticket(ENV("<R><returnval><sessionId>x</sessionId></returnval></R>"), &t),
                     -VD_E_NET_CONNECT);
    assert_non_null(strstr(vd_err_msg(), "without service"));
    vs_ticket_free(&t);
    assert_int_equal(ticket(ENV("<R><other/></R>"), &t), -VD_E_NET_CONNECT);
    assert_non_null(strstr(vd_err_msg(), "returned no ticket"));
    vs_ticket_free(&t);
}

static void test_faults(void **st)
{
    (void)st;
    xmlDoc *doc;
    xmlNode *r;
    int relogin;
    assert_int_equal(parse(ENV("<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
                               "<faultstring>managed object not found: vm-9</faultstring><detail>"
                               "<ManagedObjectNotFoundFault xmlns=\"urn:vim25\" xsi:type="
                               "\"ManagedObjectNotFound\"/></detail></soapenv:Fault>"),
                           500, &doc, &r, &relogin), -VD_E_NOTFOUND);
    assert_non_null(strstr(vd_err_msg(), "vm-9"));
    assert_int_equal(relogin, 0);
    assert_int_equal(parse(ENV("<soapenv:Fault><faultstring>x</faultstring><detail>"
                               "<NotAuthenticatedFault/></detail></soapenv:Fault>"),
                           500, &doc, &r, &relogin), -VD_E_AUTH);
    assert_int_equal(relogin, 1);
    assert_int_equal(parse(ENV("<soapenv:Fault><detail><NotSupportedFault xmlns=\"urn:vim25\" "
                               "xsi:type=\"NotSupported\"/></detail></soapenv:Fault>"),
                           500, &doc, &r, &relogin), -VD_E_UNSUPPORTED);
    assert_int_equal(parse(ENV("<soapenv:Fault/>"), 500, &doc, &r, &relogin), -VD_E_NET_CONNECT);
}

static void test_not_soap(void **st)
{
    (void)st;
    xmlDoc *doc;
    xmlNode *r;
    int relogin;
    static const char *const bad[] = {
        "", "not xml at all", "<html><body>login</body></html>", "<Envelope><Body>",
        "<?xml version=\"1.0\"?><a:Envelope xmlns:a=\"x\"><a:Body><",
        "\xff\xfe<\0E\0", NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        assert_int_equal(parse(bad[i], 200, &doc, &r, &relogin), -VD_E_NET_CONNECT);
        assert_non_null(strstr(vd_err_msg(), "vc.test:443"));
        assert_null(doc);
    }
    assert_int_equal(parse(NULL, 200, &doc, &r, &relogin), -VD_E_NET_CONNECT);
    assert_int_equal(parse("<html/>", 404, &doc, &r, &relogin), -VD_E_NET_CONNECT);
    assert_non_null(strstr(vd_err_msg(), "no vSphere API"));
    assert_int_equal(parse("", 401, &doc, &r, &relogin), -VD_E_AUTH);
    assert_int_equal(relogin, 1);
    assert_int_equal(parse(ENV(""), 200, &doc, &r, &relogin), -VD_E_NET_CONNECT);
    assert_non_null(strstr(vd_err_msg(), "empty SOAP body"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket_vcenter),
        cmocka_unit_test(test_ticket_esxi),
        cmocka_unit_test(test_ticket_incomplete),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_not_soap),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
