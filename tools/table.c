/* table.c - aligned text tables for the human output of the CLI.
 *
 * Cells are collected row by row (the first row is the header), widths are
 * measured in bytes (the data is ASCII but for names; a UTF-8 name only
 * misaligns its own row), then printed with two spaces between columns,
 * numbers right-aligned. Machine formats (csv, json, jsonl) never use this.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void acr__table_init(acr_table_t *t, size_t cols, uint32_t right_mask)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->right_mask = right_mask;
}

int acr__table_add(acr_table_t *t, const char *text)
{
    if (t->cells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **cell = realloc(t->cell, cap * sizeof *cell);
        if (cell == NULL)
            return ACR_ENOMEM;
        t->cell = cell;
        t->cap = cap;
    }
    char *copy = strdup(text != NULL ? text : "");
    if (copy == NULL)
        return ACR_ENOMEM;
    t->cell[t->cells++] = copy;
    return 0;
}

void acr__table_print(const acr_table_t *t, FILE *f)
{
    size_t width[32] = {0};
    size_t cols = t->cols < 32 ? t->cols : 32;
    for (size_t i = 0; i < t->cells; i++) {
        size_t n = strlen(t->cell[i]);
        if (n > width[i % t->cols] && i % t->cols < cols)
            width[i % t->cols] = n;
    }
    for (size_t i = 0; i < t->cells; i++) {
        size_t c = i % t->cols;
        bool last = c + 1 == t->cols || i + 1 == t->cells;
        bool right = c < 32 && ((t->right_mask >> c) & 1u);
        int w = c < cols ? (int)width[c] : 0;
        if (right)
            fprintf(f, "%*s", w, t->cell[i]);
        else if (last)
            fputs(t->cell[i], f);
        else
            fprintf(f, "%-*s", w, t->cell[i]);
        fputs(last ? "\n" : "  ", f);
    }
}

void acr__table_destroy(acr_table_t *t)
{
    for (size_t i = 0; i < t->cells; i++)
        free(t->cell[i]);
    free(t->cell);
    memset(t, 0, sizeof *t);
}
