# check_lib.sh: sourced by the shell tests that print one line per check. check OK MESSAGE prints
# "PASS: MESSAGE" when OK is 0, else "FAIL: MESSAGE" and records the failure; the test ends with
# `exit $fail`.
fail=0
check() {
    if [ "$1" = 0 ]; then echo "PASS: $2"; else echo "FAIL: $2"; fail=1; fi
}
