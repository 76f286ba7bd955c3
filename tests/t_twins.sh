#!/bin/sh
# make check: the twin rule holds (tests/check_twins.sh); the twin tests themselves are build/tests/test_twins.
exec sh "$(dirname "$0")/check_twins.sh"
