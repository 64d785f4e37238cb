/* Replays fuzz inputs without libFuzzer, so that `make check` runs every corpus file through its
 * parser with the ordinary compiler (no clang needed in CI). Each argument is a file or a
 * directory of files; every input is read into a buffer of exactly its size (so that ASan sees
 * a read past its end) and handed to the target's LLVMFuzzerTestOneInput, as libFuzzer would.
 * A parser that crashes or trips one of the target's checks aborts the run; no input at all is
 * an error too, so that a missing corpus cannot pass. Exit status: 0 ok, 1 error. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got = 1; buf && got;) {
        if (len == cap) {
            uint8_t *t = realloc(buf, cap *= 2);
            if (!t) free(buf);
            buf = t;
            if (!buf) break;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    uint8_t *exact = malloc(len ? len : 1); /* no slack after the data */
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

/* Runs path, or every regular file of the directory path; returns inputs run or -1. */
static long run_path(const char *path) {
    struct stat st;
    if (stat(path, &st)) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path) ? -1 : 1;
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        return -1;
    }
    long n = 0;
    char sub[4096];
    for (struct dirent *e; n >= 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (stat(sub, &st) || !S_ISREG(st.st_mode)) continue;
        n = run_file(sub) ? -1 : n + 1;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0) return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "%s: no inputs (usage: %s FILE|DIR...)\n", argv[0], argv[0]);
        return 1;
    }
    printf("%s: %ld inputs replayed, no failure\n", argv[0], total);
    return 0;
}
