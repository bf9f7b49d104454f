#!/bin/sh
# greet GREETING [NAME]: print "GREETING, NAME!" (NAME defaults to world).
set -eu
greeting="${1:?usage: greet GREETING [NAME]}"
name="${2:-world}"
printf '%s, %s!\n' "$greeting" "$name"
