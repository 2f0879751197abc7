/* fuzz_soap.c - SOAP replies as src/vsphere reads them: any bytes go
 * through vs_soap_parse (envelope, body, faults) with a status the first
 * byte picks; a reply it accepts is then read as an NFC ticket and turned
 * into JSON (json.c) as a VM's configuration would be.  Any input
 * must end in an error or success, never in a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsphere/vs_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vs_session s = { .peer = (char *)"fuzz:443" };
    if (size < 1)
        return 0;
    static const long statuses[] = { 200, 500, 401, 404 };
    long status = statuses[data[0] & 3];
    xmlDoc *doc;
    xmlNode *reply;
    int relogin = 0;
    if (vs_soap_parse(&s, "Fuzz", (const char *)data + 1, size - 1, status, &doc, &reply,
                      &relogin) == 0) {
        struct vs_ticket t = { 0 };
        vs_parse_ticket(&s, "Fuzz", reply, &t);
        vs_ticket_free(&t);
        free(vs_xml_type(reply));
        free(vs_xml_child_text(reply, "returnval"));
        char *json = NULL;
        if (vs_xml_to_json(reply, &json) == 0 && (!json || !*json))
            abort();   /* success always gives a document */
        free(json);
        xmlFreeDoc(doc);
    }
    return 0;
}
