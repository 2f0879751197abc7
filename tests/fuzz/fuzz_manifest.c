/* fuzz_manifest.c - backup-set manifests as `vddk verify`/`restore`/
 * `backup --base` read them: parse, and when that succeeds, write the
 * result out and parse it again (it must round-trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest *m;
    char err[512];
    if (mf_parse((const char *)data, size, "fuzz", &m, err, sizeof err) < 0)
        return 0;
    char *text = mf_format(m);
    if (text) {
        struct manifest *again;
        if (mf_parse(text, strlen(text), "again", &again, err, sizeof err) < 0)
            abort();
        if (again->nvms != m->nvms)
            abort();
        mf_free(again);
    }
    free(text);
    mf_free(m);
    return 0;
}
