/* Prints docs/env.md, generated from the parameter table of src/param.c (pc_param_print_env_md).
 * `make env-md` writes the file with it; tests/check_docs.sh diffs its output with the committed
 * file. Exit 1 when the table cannot make a valid page (a parameter without a known subsystem, or
 * a long doc with a '|' or a newline). */
#include <stdio.h>

#include "src/core.h"

int main(void) {
    int rc = pc_param_print_env_md(stdout);
    if (fflush(stdout) != 0) return 1;
    return rc == 0 ? 0 : 1;
}
