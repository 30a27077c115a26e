#!/bin/sh
# Runs the real sluice binary ($REAL_SLUICE) under valgrind memcheck for the
# integration tests of the `valgrind` suite: any invalid access or definite
# leak makes the process exit 99, which the tests see as a wrong exit code.
exec valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --error-exitcode=99 "$REAL_SLUICE" "$@"
