#!/bin/sh
# skyrunner-build: build (and push) an image with the job's kaniko sidecar.
#
#   skyrunner-build [--context DIR] [--dockerfile FILE] --destination IMAGE...
#                   [--build-arg NAME=VALUE]... [--cache] [--cache-repo REPO]
#                   [--target STAGE] [--no-push] [-- KANIKO_OPTION...]
#
# The job asks for the sidecar with SKYRUNNER_IMAGE_BUILDER=kaniko; this command is then on the
# build container's PATH. It prints kaniko's output as it comes and exits with kaniko's exit
# code. kaniko runs in its own container, so this container's files are untouched and the job's
# next commands run as usual.
#
# Defaults: --context is $CI_PROJECT_DIR (else the working directory), --dockerfile is
# <context>/Dockerfile; relative paths are taken from the working directory. Both must be in a
# directory the kaniko container shares (the builds dir, the run dir, the config's volumes).
# Options after "--" go to /kaniko/executor as they are (--label, --skip-tls-verify...). The
# registry credentials of the job are kaniko's docker config already.
#
# Protocol (see skyrunner-kaniko): write K/<id>.new/args, one executor argument per line with
# --cleanup first; rename it to K/<id>.req; wait for the sidecar to claim it (K/<id>.run);
# print K/<id>.run/output as it grows; exit with K/<id>.run/exit. SIGTERM or SIGINT (the job
# is being stopped) writes K/<id>.run/cancel, which makes the sidecar kill kaniko.
#
# Environment:
#   SKYRUNNER_KANIKO_DIR     K (default @KANIKO_DIR@)
#   SKYRUNNER_KANIKO_SHARED  colon-separated directories kaniko shares (set in the job pod)
#   SKYRUNNER_KANIKO_WAIT    seconds to wait for the sidecar to take the request (default 120)
#   SKYRUNNER_KANIKO_POLL    seconds between looks (default 0.2)
# Exit codes: kaniko's; 2 for a usage error; 125 when there is no sidecar to build with.

K="${SKYRUNNER_KANIKO_DIR:-@KANIKO_DIR@}"
shared="${SKYRUNNER_KANIKO_SHARED:-${CI_BUILDS_DIR:-/builds}:@RUN_DIR@}"
wait_s="${SKYRUNNER_KANIKO_WAIT:-120}"
poll="${SKYRUNNER_KANIKO_POLL:-0.2}"
id="$(date +%s)-$$"
new="$K/$id.new"
req="$K/$id.req"
run="$K/$id.run"

nap() { sleep "$poll" 2>/dev/null || sleep 1; }
say() { printf 'skyrunner-build: %s\n' "$1" >&2; }
fail() { # $1 code, $2 message
  say "$2"
  rm -rf "$new"
  exit "$1"
}
usage() { sed -n '3,6s/^# \{0,1\}//p' "$0"; }

if [ ! -d "$K" ]; then
  fail 125 "this job has no image builder: set SKYRUNNER_IMAGE_BUILDER=kaniko in its variables"
fi
mkdir "$new" || fail 125 "cannot write a request in $K"
: >"$new/options"

add() { # one executor argument
  case "$1" in
    *'
'*) fail 2 "an argument contains a newline, which kaniko requests cannot carry" ;;
  esac
  printf '%s\n' "$1" >>"$new/options"
}
value() { # $1 option, $2 argument count left: the option needs a value
  [ "$2" -ge 2 ] || fail 2 "$1 needs a value"
}
absolute() {
  case "$1" in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$PWD" "$1" ;;
  esac
}
is_shared() { # $1 path: inside one of the shared directories?
  rest="$shared:"
  while [ -n "$rest" ]; do
    dir="${rest%%:*}"
    rest="${rest#*:}"
    dir="${dir%/}"
    [ -n "$dir" ] || continue
    case "$1" in "$dir" | "$dir"/*) return 0 ;; esac
  done
  return 1
}

context=""
dockerfile=""
push=0
while [ $# -gt 0 ]; do
  case "$1" in
    --context) value "$1" $#; context="$2"; shift 2 ;;
    --context=*) context="${1#*=}"; shift ;;
    --dockerfile | -f) value "$1" $#; dockerfile="$2"; shift 2 ;;
    --dockerfile=*) dockerfile="${1#*=}"; shift ;;
    --destination | -d) value "$1" $#; add "--destination=$2"; push=1; shift 2 ;;
    --destination=*) add "$1"; push=1; shift ;;
    --build-arg | --cache-repo | --target) value "$1" $#; add "$1=$2"; shift 2 ;;
    --build-arg=* | --cache-repo=* | --target=*) add "$1"; shift ;;
    --cache) add "--cache=true"; shift ;;
    --no-push) add "--no-push"; push=1; shift ;;
    --) shift; for option in "$@"; do add "$option"; done; break ;;
    -h | --help) usage; rm -rf "$new"; exit 0 ;;
    *) fail 2 "unknown option $1 (give kaniko's own options after --)" ;;
  esac
done
[ "$push" = 1 ] || fail 2 "give at least one --destination (or --no-push)"

context="$(absolute "${context:-${CI_PROJECT_DIR:-.}}")"
dockerfile="$(absolute "${dockerfile:-$context/Dockerfile}")"
for path in "$context" "$dockerfile"; do
  is_shared "$path" || fail 2 "$path is not in a directory the kaniko container shares ($shared)"
done
{
  printf '%s\n' --cleanup "--context=dir://$context" "--dockerfile=$dockerfile"
  cat "$new/options"
} >"$new/args" || fail 125 "cannot write a request in $K"
rm -f "$new/options"

on_stop() { # $1 exit code
  if mv "$req" "$K/$id.gone" 2>/dev/null; then
    rm -rf "$K/$id.gone"
  elif [ -d "$run" ]; then
    : >"$run/cancel"
  fi
  exit "$1"
}
trap 'on_stop 143' TERM
trap 'on_stop 130' INT

mv "$new" "$req" || fail 125 "cannot hand the request to the kaniko sidecar"
started="$(date +%s)"
while [ ! -d "$run" ]; do
  if [ $(($(date +%s) - started)) -ge "$wait_s" ] && mv "$req" "$K/$id.gone" 2>/dev/null; then
    rm -rf "$K/$id.gone"
    say "the kaniko sidecar did not take the request within ${wait_s}s"
    exit 125
  fi
  nap
done

offset=0
chunk="$run/.chunk.$$"
drain() { # print what kaniko wrote since the last call
  [ -f "$run/output" ] || return 0
  tail -c "+$((offset + 1))" "$run/output" >"$chunk" 2>/dev/null || return 0
  count="$(wc -c <"$chunk" | tr -d ' ')"
  if [ "${count:-0}" -gt 0 ]; then
    cat "$chunk"
    offset=$((offset + count))
  fi
}
while [ ! -f "$run/exit" ]; do
  drain
  nap
done
drain
code="$(cat "$run/exit")"
rm -rf "$run"
case "$code" in
  '' | *[!0-9]*) code=1 ;;
esac
exit "$code"
