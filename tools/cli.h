/*
 * cli: the one way every catanet program reads its command line's numbers and prints --version.
 * Options themselves are parsed with glibc's getopt_long; these check what the option's text means.
 * Each parse function accepts the whole string or nothing (no trailing text, no empty string, no
 * overflow, the value within [lo, hi]); on refusal it prints "PROG: OPTION: why" to stderr and
 * returns -1, leaving *out unchanged.
 */
#ifndef CATANET_CLI_H
#define CATANET_CLI_H

#include <stdint.h>

int cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out);
int cli_int64(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* finite values only (no "nan", "inf") */
int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi, double *out);
/* prints "PROG (catanet) VERSION" to stdout */
void cli_version(const char *prog);

#endif
