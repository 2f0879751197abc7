/* test_vsjson.c - vim25 data objects as JSON (src/vsphere/json.c): nesting,
 * repeated and known-array elements, xsi:type as "_type" and typed scalars,
 * string escaping, and odd input that must give valid output or an error,
 * never a crash.  Every output is also checked to be well-formed JSON by a
 * small validator here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libxml/parser.h>

#include "util/err.h"
#include "vsphere/vs_priv.h"

#define NS "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" " \
           "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""

/* ---- a strict JSON checker (RFC 8259 grammar, no extensions) ---------- */

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *jvalue(const char *p, int depth);

static const char *jstring(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"')
            return p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            c = (unsigned char)*p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++, p++)
                    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                          (*p >= 'A' && *p <= 'F')))
                        return NULL;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return NULL;
            }
        }
    }
}

static const char *jnumber(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    return p;   /* integers are all the converter writes */
}

static const char *jvalue(const char *p, int depth)
{
    if (depth > 1000)
        return NULL;
    p = ws(p);
    if (*p == '"')
        return jstring(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = jstring(ws(p))))
                    return NULL;
                p = ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = jvalue(p, depth + 1)))
                return NULL;
            p = ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (strncmp(p, "true", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    return jnumber(p);
}

static int valid_json(const char *s)
{
    const char *e = jvalue(s, 0);
    return e && *ws(e) == '\0';
}

/* ---- helpers ----------------------------------------------------------- */

/* JSON of the root element of xml; NULL (and *rc set) on failure. */
static char *conv(const char *xml, int *rcp)
{
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    assert_non_null(doc);
    char *out = NULL;
    int rc = vs_xml_to_json(xmlDocGetRootElement(doc), &out);
    xmlFreeDoc(doc);
    if (rcp)
        *rcp = rc;
    if (rc == 0) {
        assert_non_null(out);
        if (!valid_json(out))
            fail_msg("not valid JSON: %s", out);
    } else {
        assert_null(out);
    }
    return out;
}

static void expect(const char *xml, const char *want)
{
    int rc;
    char *got = conv(xml, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
}

/* ---- cases ------------------------------------------------------------- */

static void test_nesting(void **st)
{
    (void)st;
    expect("<val " NS " xsi:type=\"VirtualMachineConfigInfo\"><name>vm1</name><hardware>"
           "<numCPU xsi:type=\"xsd:int\">2</numCPU><memoryMB>4096</memoryMB></hardware>"
           "<files><vmPathName>[ds] vm1/vm1.vmx</vmPathName></files></val>",
           "{\"_type\":\"VirtualMachineConfigInfo\",\"name\":\"vm1\",\"hardware\":"
           "{\"numCPU\":2,\"memoryMB\":\"4096\"},\"files\":{\"vmPathName\":"
           "\"[ds] vm1/vm1.vmx\"}}");
    /* Text-only elements stay strings, whatever they look like. */
    expect("<a><b>true</b><c>12</c><d></d><e/></a>",
           "{\"b\":\"true\",\"c\":\"12\",\"d\":\"\",\"e\":\"\"}");
    /* A lone text element is a string. */
    expect("<a>x</a>", "\"x\"");
}

static void test_repeated(void **st)
{
    (void)st;
    /* Repeated names become arrays in document order, at the position of
     * their first member; the others keep theirs. */
    expect("<a><x>1</x><y>2</y><x>3</x><z/><x>4</x></a>",
           "{\"x\":[\"1\",\"3\",\"4\"],\"y\":\"2\",\"z\":\"\"}");
    /* Known vim25 arrays are arrays even with one member. */
    expect("<hardware " NS "><device xsi:type=\"VirtualDisk\"><key xsi:type=\"xsd:int\">2000"
           "</key></device></hardware>",
           "{\"device\":[{\"_type\":\"VirtualDisk\",\"key\":2000}]}");
    expect("<c><extraConfig><key>a</key><value xsi:type=\"xsd:string\" " NS ">b</value>"
           "</extraConfig></c>",
           "{\"extraConfig\":[{\"key\":\"a\",\"value\":\"b\"}]}");
    /* A controller's device list of keys. */
    expect("<d " NS "><device xsi:type=\"xsd:int\">2000</device><device xsi:type=\"xsd:int\">"
           "2001</device></d>",
           "{\"device\":[2000,2001]}");
    /* Many siblings, all different, and all the same. */
    char *big = malloc(200000), *p = big;
    p += sprintf(p, "<a>");
    for (int i = 0; i < 5000; i++)
        p += sprintf(p, "<k%d>%d</k%d>", i, i, i);
    for (int i = 0; i < 5000; i++)
        p += sprintf(p, "<r>%d</r>", i);
    sprintf(p, "</a>");
    int rc;
    char *got = conv(big, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(got, "\"k0\":\"0\",\"k1\":\"1\""));
    assert_non_null(strstr(got, "\"r\":[\"0\",\"1\","));
    assert_non_null(strstr(got, "\"4999\"]}"));
    free(got);
    free(big);
}

static void test_types(void **st)
{
    (void)st;
    /* xsd scalars: booleans and integers when valid, else the text. */
    expect("<a " NS "><t xsi:type=\"xsd:boolean\">true</t><f xsi:type=\"xsd:boolean\">0</f>"
           "<n xsi:type=\"xsd:long\">-9223372036854775808</n><s xsi:type=\"xsd:short\"> 7 </s>"
           "<p xsi:type=\"xsd:int\">+5</p><z xsi:type=\"xsd:int\">007</z>"
           "<o xsi:type=\"xsd:long\">99999999999999999999</o><x xsi:type=\"xsd:int\">1e3</x>"
           "<b xsi:type=\"xsd:boolean\">yes</b><e xsi:type=\"xsd:int\"></e>"
           "<str xsi:type=\"xsd:string\">42</str><dt xsi:type=\"xsd:dateTime\">2026-01-01T00:00:00Z"
           "</dt></a>",
           "{\"t\":true,\"f\":false,\"n\":-9223372036854775808,\"s\":7,\"p\":5,\"z\":7,"
           "\"o\":\"99999999999999999999\",\"x\":\"1e3\",\"b\":\"yes\",\"e\":\"\","
           "\"str\":\"42\",\"dt\":\"2026-01-01T00:00:00Z\"}");
    /* A vim25 type on an empty element is an object with only _type; on a
     * text element (a moref) the text; other attributes are dropped. */
    expect("<a " NS "><b xsi:type=\"VirtualCdromRemotePassthroughBackingInfo\"/>"
           "<ds type=\"Datastore\" xsi:type=\"ManagedObjectReference\">datastore-1</ds></a>",
           "{\"b\":{\"_type\":\"VirtualCdromRemotePassthroughBackingInfo\"},"
           "\"ds\":\"datastore-1\"}");
    /* The prefix is resolved by namespace: "q:int" in the XSD namespace is
     * an integer, "xsd:int" bound to something else is not. */
    expect("<a xmlns:q=\"http://www.w3.org/2001/XMLSchema\" "
           "xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><n i:type=\"q:int\">3</n></a>",
           "{\"n\":3}");
    expect("<a xmlns:xsd=\"urn:other\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">"
           "<n i:type=\"xsd:int\">3</n></a>",
           "{\"n\":\"3\"}");
}

static void test_escaping(void **st)
{
    (void)st;
    expect("<a><s>say \"hi\" \\ &lt;b&gt; &amp;</s><c>tab\there&#10;nl&#13;cr</c>"
           "<u>gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80</u><k>\x7f</k></a>",
           "{\"s\":\"say \\\"hi\\\" \\\\ <b> &\",\"c\":\"tab\\there\\nnl\\rcr\","
           "\"u\":\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80\","
           "\"k\":\"\x7f\"}");
    /* Control characters XML 1.0 cannot carry, put into a tree directly. */
    xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *root = xmlNewNode(NULL, (const xmlChar *)"a");
    xmlDocSetRootElement(doc, root);
    xmlNode *k = xmlNewChild(root, NULL, (const xmlChar *)"k", NULL);
    xmlNodeAddContent(k, (const xmlChar *)"\x01\x08\x0c\x1f/");
    char *out = NULL;
    assert_int_equal(vs_xml_to_json(root, &out), 0);
    xmlFreeDoc(doc);
    assert_true(valid_json(out));
    assert_string_equal(out, "{\"k\":\"\\u0001\\b\\f\\u001f/\"}");
    free(out);
}

static void test_odd(void **st)
{
    (void)st;
    /* Mixed content: children win, the loose text is dropped. */
    expect("<a>x<b>1</b>y</a>", "{\"b\":\"1\"}");
    /* Namespaced children by local name; comments and PIs ignored. */
    expect("<a xmlns:p=\"urn:p\"><p:b>1</p:b><!-- c --><?pi x?><b>2</b></a>",
           "{\"b\":[\"1\",\"2\"]}");
    /* CDATA is text. */
    expect("<a><b><![CDATA[<x>\"]]></b></a>", "{\"b\":\"<x>\\\"\"}");
    /* An xsi:type with a long or absent prefix, or empty. */
    expect("<a " NS "><b xsi:type=\"\"/><c xsi:type=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaaaaaaaaaaaaaaaaaaaaaa:int\">1</c><d xsi:type=\":\"/></a>",
           "{\"b\":{\"_type\":\"\"},\"c\":\"1\",\"d\":{\"_type\":\"\"}}");
    /* Deep nesting ends in an error, not a crash. */
    char *deep = malloc(20 * 300 + 64), *p = deep;
    for (int i = 0; i < 250; i++)
        p += sprintf(p, "<a>");
    for (int i = 0; i < 250; i++)
        p += sprintf(p, "</a>");
    *p = '\0';
    int rc;
    char *got = conv(deep, &rc);
    assert_int_equal(rc, -VD_E_CORRUPT);
    free(got);
    free(deep);
    /* Nothing to convert. */
    char *out = (char *)1;
    assert_int_equal(vs_xml_to_json(NULL, &out), -VD_E_INVAL);
    assert_null(out);
}

/* A whole RetrievePropertiesEx reply, as from vcsim, through soap_parse. */
static void test_reply(void **st)
{
    (void)st;
    static const char reply[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
        "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" " NS "><soapenv:Body>"
        "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj "
        "type=\"VirtualMachine\">vm-1</obj><propSet><name>config</name><val "
        "xsi:type=\"VirtualMachineConfigInfo\"><name>DC0_H0_VM0</name><hardware><numCPU>1"
        "</numCPU><device xsi:type=\"VirtualIDEController\"><key>200</key></device><device "
        "xsi:type=\"VirtualDisk\"><key>2000</key><backing xsi:type=\""
        "VirtualDiskFlatVer2BackingInfo\"><fileName>[LocalDS_0] x/disk1.vmdk</fileName>"
        "<datastore type=\"Datastore\">datastore-1</datastore><thinProvisioned>true"
        "</thinProvisioned></backing></device></hardware></val></propSet></objects>"
        "</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>";
    struct vs_session s = { .peer = (char *)"vc.test:443" };
    xmlDoc *doc;
    xmlNode *r;
    int relogin = 0;
    assert_int_equal(vs_soap_parse(&s, "RetrievePropertiesEx", reply, strlen(reply), 200, &doc,
                                   &r, &relogin), 0);
    xmlNode *o = vs_xml_child(vs_xml_child(r, "returnval"), "objects");
    xmlNode *val = vs_prop_val(o, "config");
    assert_non_null(val);
    char *json = NULL;
    assert_int_equal(vs_xml_to_json(val, &json), 0);
    xmlFreeDoc(doc);
    assert_true(valid_json(json));
    assert_string_equal(json,
        "{\"_type\":\"VirtualMachineConfigInfo\",\"name\":\"DC0_H0_VM0\",\"hardware\":{"
        "\"numCPU\":\"1\",\"device\":[{\"_type\":\"VirtualIDEController\",\"key\":\"200\"},"
        "{\"_type\":\"VirtualDisk\",\"key\":\"2000\",\"backing\":{\"_type\":"
        "\"VirtualDiskFlatVer2BackingInfo\",\"fileName\":\"[LocalDS_0] x/disk1.vmdk\","
        "\"datastore\":\"datastore-1\",\"thinProvisioned\":\"true\"}}]}}");
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting),  cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_types),    cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_odd),      cmocka_unit_test(test_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
