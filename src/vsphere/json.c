/* json.c - a vim25 data object from a SOAP reply as JSON.
 *
 * The conversion follows the XML tree, with no schema:
 *  - an element with child elements is an object; its keys are the local
 *    names of the children, in the order they first occur;
 *  - a name that occurs more than once among siblings is an array of their
 *    values, in document order.  vim25 arrays are repeated elements, so an
 *    array with one member would look like a single value; for the array
 *    properties of VirtualMachineConfigInfo and what it holds (see
 *    always_array below) the value is an array however many members there
 *    are;
 *  - an element without child elements is a string (its text, "" when
 *    empty), except for the XML Schema types xsd:boolean (true/false) and
 *    xsd:int, xsd:long, xsd:short, xsd:byte (a JSON integer) when the text
 *    is a valid value of that type;
 *  - the xsi:type of an element ("VirtualDisk", without its prefix) is the
 *    key "_type" of its object, first; an element with a vim25 xsi:type but
 *    neither children nor text is the object {"_type": ...};
 *  - other attributes (a moref's type="Datastore") and the text between
 *    child elements are dropped.
 * Strings are escaped as JSON requires (quote, backslash, control
 * characters); libxml2 hands over UTF-8, which is copied as it is. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define MAX_DEPTH 200   /* libxml2 stops at 256 levels; stay below our stack's worries */

/* Names whose values are vim25 arrays (xsd maxOccurs="unbounded") in
 * VirtualMachineConfigInfo and the data objects under it. */
static const char *const always_array[] = {
    "device",                 /* VirtualHardware.device, VirtualController.device */
    "extraConfig",            /* OptionValue[] */
    "datastoreUrl",           /* VirtualMachineConfigInfoDatastoreUrlPair[] */
    "bootOrder",              /* VirtualMachineBootOptions */
    "affinitySet",            /* VirtualMachineAffinityInfo */
    "cpuFeatureMask",         /* HostCpuIdInfo[] */
    "vcpuConfig",             /* VirtualMachineVcpuConfig[] */
    "iofilter",               /* VirtualDisk */
    "instanceUuids",          /* FaultToleranceConfigInfo */
    "configPaths",            /* FaultToleranceConfigInfo */
    "dynamicProperty",        /* DynamicData */
    "ovfEnvironmentTransport",/* VmConfigInfo */
    "ovfSection",             /* VmConfigInfo */
    "eula",                   /* VmConfigInfo */
    "product",                /* VmConfigInfo */
    "property",               /* VmConfigInfo */
    "supportedAllocationScheme", /* VAppIPAssignmentInfo */
    "supportedIpProtocol",    /* VAppIPAssignmentInfo */
    "filters",                /* VirtualMachineVMCIDeviceFilterInfo */
    NULL,
};

struct jbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void put(struct jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct jbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_string(struct jbuf *b, const char *s)
{
    put(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char u[8];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (*p < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", *p);
                esc = u;
            }
        }
        if (esc) {
            put(b, run, (size_t)((const char *)p - run));
            puts_(b, esc);
            run = (const char *)p + 1;
        }
    }
    puts_(b, run);
    put(b, "\"", 1);
}

/* The raw xsi:type value ("xsd:int", "vim25:VirtualDisk"), or NULL. */
static xmlChar *raw_type(xmlNode *n)
{
    return xmlGetNsProp(n, (const xmlChar *)"type",
                        (const xmlChar *)"http://www.w3.org/2001/XMLSchema-instance");
}

/* "xsd:int" -> "int" when the prefix names XML Schema (by namespace when
 * libxml2 can resolve it, else by the usual prefixes); NULL otherwise. */
static const char *xsd_type(xmlNode *n, const char *t)
{
    const char *colon = strchr(t, ':');
    if (!colon)
        return NULL;
    char prefix[64];
    size_t pl = (size_t)(colon - t);
    if (pl >= sizeof prefix)
        return NULL;
    memcpy(prefix, t, pl);
    prefix[pl] = '\0';
    xmlNs *ns = xmlSearchNs(n->doc, n, (const xmlChar *)prefix);
    if (ns && ns->href)
        return strcmp((const char *)ns->href, "http://www.w3.org/2001/XMLSchema") == 0
                   ? colon + 1 : NULL;
    return strcmp(prefix, "xsd") == 0 || strcmp(prefix, "xs") == 0 ? colon + 1 : NULL;
}

static int has_element_children(xmlNode *n)
{
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return 1;
    return 0;
}

/* A typed value as JSON (true, false, an integer) into num, or 0 when
 * the text is not a valid value of that type. */
static int typed(const char *xsd, const char *text, char *num, size_t size)
{
    char *copy = vd_strdup(text);
    if (!copy)
        return 0;
    const char *v = vd_trim(copy);
    int ok = 0;
    if (strcmp(xsd, "boolean") == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            ok = snprintf(num, size, "true") > 0;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            ok = snprintf(num, size, "false") > 0;
    } else if (strcmp(xsd, "int") == 0 || strcmp(xsd, "long") == 0 ||
               strcmp(xsd, "short") == 0 || strcmp(xsd, "byte") == 0) {
        const char *d = v + (*v == '-' || *v == '+');
        int digits = *d != '\0';
        for (const char *q = d; *q; q++)
            digits &= *q >= '0' && *q <= '9';
        if (digits) {
            errno = 0;
            char *end;
            long long x = strtoll(v, &end, 10);
            ok = errno == 0 && *end == '\0' && snprintf(num, size, "%lld", x) > 0;
        }
    }
    free(copy);
    return ok;
}

/* A text-only element: a typed scalar, else its text as a string. */
static void put_scalar(struct jbuf *b, xmlNode *n, const char *xsd)
{
    xmlChar *content = xmlNodeGetContent(n);
    const char *text = content ? (const char *)content : "";
    char num[32];
    if (xsd && typed(xsd, text, num, sizeof num))
        puts_(b, num);
    else
        put_string(b, text);
    xmlFree(content);
}

#define NONE SIZE_MAX

struct member {
    xmlNode *node;
    size_t index;       /* position among the element children */
    size_t group;       /* index of the first child with the same name */
    size_t next;        /* index of the next child with that name, or NONE */
    size_t members;     /* how many children have that name */
};

static int by_name(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp((const char *)x->node->name, (const char *)y->node->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int by_index(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int put_value(struct jbuf *b, xmlNode *n, int depth);

static int is_always_array(const char *name)
{
    for (size_t i = 0; always_array[i]; i++)
        if (strcmp(always_array[i], name) == 0)
            return 1;
    return 0;
}

/* The object of an element with child elements (or with only a vim25
 * xsi:type): groups of same-named children, sorted by name to find them
 * in O(n log n), emitted in the order of their first member. */
static int put_object(struct jbuf *b, xmlNode *n, const char *type, int depth)
{
    size_t count = 0;
    for (xmlNode *c = n->children; c; c = c->next)
        count += c->type == XML_ELEMENT_NODE;
    struct member *m = count ? calloc(count, sizeof *m) : NULL;
    if (count && !m)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    size_t i = 0;
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) {
            m[i].node = c;
            m[i].index = i;
            i++;
        }
    if (count > 1)
        qsort(m, count, sizeof *m, by_name);
    /* Runs of one name: link each member to the next, count them. */
    for (size_t run = 0; run < count;) {
        size_t end = run + 1;
        while (end < count &&
               strcmp((const char *)m[end].node->name, (const char *)m[run].node->name) == 0)
            end++;
        for (size_t k = run; k < end; k++) {
            m[k].group = m[run].index;
            m[k].next = k + 1 < end ? m[k + 1].index : NONE;
            m[k].members = end - run;
        }
        run = end;
    }
    if (count > 1)
        qsort(m, count, sizeof *m, by_index);
    /* Now in document order: m[k].index == k, and m[k].group is the first
     * member's position in m. */
    put(b, "{", 1);
    int first = 1, rc = 0;
    if (type) {
        puts_(b, "\"_type\":");
        put_string(b, type);
        first = 0;
    }
    for (i = 0; i < count && rc == 0; i++) {
        if (m[i].group != i)
            continue;              /* emitted with its group */
        const char *name = (const char *)m[i].node->name;
        size_t members = m[i].members;
        if (!first)
            put(b, ",", 1);
        first = 0;
        put_string(b, name);
        put(b, ":", 1);
        if (members == 1 && !is_always_array(name)) {
            rc = put_value(b, m[i].node, depth + 1);
            continue;
        }
        put(b, "[", 1);
        int f = 1;
        for (size_t k = i; k != NONE && rc == 0; k = m[k].next) {
            if (!f)
                put(b, ",", 1);
            f = 0;
            rc = put_value(b, m[k].node, depth + 1);
        }
        put(b, "]", 1);
    }
    put(b, "}", 1);
    free(m);
    return rc;
}

static int put_value(struct jbuf *b, xmlNode *n, int depth)
{
    if (depth > MAX_DEPTH)
        return vd_err_set(VD_E_CORRUPT, "XML nested deeper than %d levels", MAX_DEPTH);
    xmlChar *t = raw_type(n);
    const char *xsd = t ? xsd_type(n, (const char *)t) : NULL;
    int rc = 0;
    if (has_element_children(n)) {
        char *vt = t ? vs_xml_type(n) : NULL;
        rc = put_object(b, n, vt, depth);
        free(vt);
    } else if (t && !xsd) {
        xmlChar *content = xmlNodeGetContent(n);
        int empty = !content || !*vd_trim((char *)content);
        xmlFree(content);
        if (empty) {
            char *vt = vs_xml_type(n);
            rc = put_object(b, n, vt, depth);
            free(vt);
        } else {
            put_scalar(b, n, NULL);
        }
    } else {
        put_scalar(b, n, xsd);
    }
    xmlFree(t);
    return rc;
}

int vs_xml_to_json(xmlNode *n, char **out)
{
    *out = NULL;
    if (!n || n->type != XML_ELEMENT_NODE)
        return vd_err_set(VD_E_INVAL, "no XML element to convert");
    struct jbuf b = { 0 };
    int rc = put_value(&b, n, 0);
    if (rc == 0 && (b.oom || !b.p))
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}
