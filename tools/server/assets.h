/* assets.h - the dashboard's files as embedded by tools/dashboard/embed.c.
 *
 * The generated $(BUILD)/gen/dashboard_assets.c defines acr_srv_dash_assets[]:
 * one entry per file of tools/dashboard/ (index.html answers "/", the rest
 * "/assets/<name>"), with its Content-Type and a strong ETag (XXH3-64 of the
 * bytes) computed at build time. Only tools/server/dashboard.c reads it.
 */
#ifndef ACCRUE_TOOLS_SERVER_ASSETS_H
#define ACCRUE_TOOLS_SERVER_ASSETS_H

#include <stddef.h>

typedef struct acr_srv_asset {
    const char *path;          /* "/" or "/assets/app.js" */
    const char *ctype;         /* Content-Type */
    const unsigned char *data; /* the file's bytes */
    size_t len;
    const char *etag;          /* "\"<16 hex>\"" */
} acr_srv_asset_t;

extern const acr_srv_asset_t acr_srv_dash_assets[];
extern const size_t acr_srv_dash_asset_count;

#endif
