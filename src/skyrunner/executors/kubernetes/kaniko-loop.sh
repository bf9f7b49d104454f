#!/bin/sh
# skyrunner-kaniko: the kaniko sidecar's loop; builds images for skyrunner-build.
#
#   sh @RUN_DIR@/bin/skyrunner-kaniko
#
# Why: kaniko builds an image by unpacking it into its own container's filesystem and, with
# --cleanup, deleting that again afterwards. In the job's build container it would wipe the
# job's own tools, so nothing could run after the build. So kaniko gets a container of its own
# in the job pod (no privileges needed), and the build container hands it requests through the
# shared @RUN_DIR@ volume. POSIX sh only: kaniko's debug image has busybox.
#
# Protocol, in the directory K:
#   K/ready           written when this loop has started
#   K/<id>.new/       a request being written by skyrunner-build (ignored here)
#   K/<id>.req/args   a complete request: one /kaniko/executor argument per line
#   K/<id>.run/       the request once this loop has claimed it (renamed from .req):
#     output            kaniko's stdout and stderr, as they come
#     exit              kaniko's exit code, written once kaniko has ended (renamed into place)
#     cancel            written by skyrunner-build when the job is stopped: kaniko is killed
# Requests run one at a time, oldest name first. The loop ends, with 0, when the build phase's
# marker appears and no request is waiting, or on SIGTERM (after killing a running kaniko).
#
# Environment (the defaults are the job pod's; tests point them elsewhere):
#   SKYRUNNER_KANIKO_DIR        K (default @KANIKO_DIR@)
#   SKYRUNNER_KANIKO_EXECUTOR   the executor (default @KANIKO_EXECUTOR@)
#   SKYRUNNER_BUILD_MARKER      the build phase's end marker (default @BUILD_EXIT_MARKER@)
#   SKYRUNNER_KANIKO_POLL       seconds between looks at K (default 0.2)

K="${SKYRUNNER_KANIKO_DIR:-@KANIKO_DIR@}"
executor="${SKYRUNNER_KANIKO_EXECUTOR:-@KANIKO_EXECUTOR@}"
marker="${SKYRUNNER_BUILD_MARKER:-@BUILD_EXIT_MARKER@}"
poll="${SKYRUNNER_KANIKO_POLL:-0.2}"

stopping=0
kaniko=""

nap() { sleep "$poll" 2>/dev/null || sleep 1; }

on_stop() {
  stopping=1
  if [ -n "$kaniko" ]; then kill "$kaniko" 2>/dev/null; fi
}
trap on_stop TERM INT

serve() { # $1: a claimed request directory
  run="$1"
  set --
  while IFS= read -r arg || [ -n "$arg" ]; do
    set -- "$@" "$arg"
  done <"$run/args"
  printf 'skyrunner-kaniko: building %s\n' "${run##*/}"
  "$executor" "$@" >"$run/output" 2>&1 </dev/null &
  kaniko=$!
  (while [ ! -f "$run/cancel" ]; do nap; done; kill "$kaniko" 2>/dev/null) >/dev/null 2>&1 &
  watcher=$!
  wait "$kaniko"
  code=$?
  # a trapped signal ends `wait` early: wait again for kaniko's own status
  while kill -0 "$kaniko" 2>/dev/null; do
    wait "$kaniko"
    code=$?
  done
  kill "$watcher" 2>/dev/null
  kaniko=""
  printf '%s\n' "$code" >"$run/exit.tmp" && mv "$run/exit.tmp" "$run/exit"
  printf 'skyrunner-kaniko: %s ended with %s\n' "${run##*/}" "$code"
}

mkdir -p "$K"
: >"$K/ready"
while [ "$stopping" = 0 ]; do
  next=""
  for request in "$K"/*.req; do
    if [ -d "$request" ]; then
      next="$request"
      break
    fi
  done
  if [ -n "$next" ]; then
    claimed="${next%.req}.run"
    if mv "$next" "$claimed" 2>/dev/null; then serve "$claimed"; fi
    continue
  fi
  [ -f "$marker" ] && break
  nap
done
exit 0
