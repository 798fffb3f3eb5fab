/* mkseeds.c - writes the record_decode seed corpus: each JSON seed of
 * corpus/event_json that parses becomes its stored record bytes.
 *   cc -Iinclude tests/fuzz/mkseeds.c build/libaccrue.a $(LIBS) -o build/fuzz/mkseeds
 *   build/fuzz/mkseeds OUTDIR FILE...
 * Run by hand when the record format changes; the outputs are committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/event.h"

int main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL)
            continue;
        static char text[1 << 17];
        size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        acr_buf_t rec;
        acr_buf_init(&rec);
        acr_err_t err;
        if (acr_event_parse_json(text, n, 540, true, &rec, NULL, &err) == 0) {
            acr_record_patch(rec.data, 1785000000123LL, (uint64_t)i);
            const char *base = strrchr(argv[i], '/');
            char out[4096];
            snprintf(out, sizeof out, "%s/%s.rec", argv[1], base ? base + 1 : argv[i]);
            FILE *o = fopen(out, "wb");
            if (o != NULL) {
                fwrite(rec.data, 1, rec.len, o);
                fclose(o);
            }
        }
        acr_buf_destroy(&rec);
    }
    return 0;
}
