#!/bin/sh
# test_greet.sh GREET GREETING: check the built greet program prints what it should.
set -eu
greet="$1"
greeting="$2"
expect() {
    if [ "$1" != "$2" ]; then
        echo "FAIL: expected '$2', got '$1'" >&2
        exit 1
    fi
    echo "ok: $2"
}
expect "$("$greet" "$greeting")" "$greeting, world!"
expect "$("$greet" "$greeting" skyrunner)" "$greeting, skyrunner!"
