#!/bin/sh
# skyrunner sequencer: runs one phase of a job's stages, in order, by itself.
#
#   sequencer.sh prepare|build|finish
#
# Why: a job pod is never driven through exec or attach. Each of its containers runs one phase
# with this script (prepare in the init container, build in the job image, finish in the helper
# sidecar), and the shell executor runs the very same script as three processes, so the rules
# that order stages live in one place. POSIX sh only: job images may have no bash.
#
# Environment:
#   SKYRUNNER_RUN_DIR     the run directory R, shared by every phase of the job (required)
#   SKYRUNNER_SECTIONS    1 prints GitLab section markers around each stage (default 1); run
#                         under bash, the sequencer stamps them without a date process
#   SKYRUNNER_SHELL       shell for stage bodies (default: bash when installed, else sh)
#   SKYRUNNER_RESULTS     file that gets one "<stage>=<exit code>" line per stage run
#                         (default R/<phase>.results; kubernetes: /dev/termination-log)
#   SKYRUNNER_STOP_FILE   why the job is being stopped: a line "timeout" or "canceled", or
#                         (a downward-API annotations file) skyrunner.io/stop="timeout"; read
#                         on SIGTERM, and at the start of a phase: a job stopped before its
#                         build phase began runs only its "after" stages
#   SKYRUNNER_AFTER_SCRIPT_TIMEOUT  seconds after_script may take (default 300)
#
# Files in R:
#   phases/<phase>     one stage per line, "<stage> <when> <kind>": when is on_success,
#                      on_failure or always; kind is "step" (a failure fails the job) or
#                      "after" (after_script: runs whatever happened, its failure is a warning)
#   stages/<stage>.sh  the stage's body: prints its heading, then runs its commands
#   <phase>.stage-pid  the running stage's process (and, with setsid, group and session) id,
#                      for whoever must kill the job outright
#   build.exit         "<status>:<code>" written by the build phase once it has ended (after
#                      after_script); status is success, failed or canceled. The finish phase
#                      waits for it; while it is missing the build is still running.
#
# Rules: a stage runs when its "when" matches the job status so far (success until a step
# fails; the finish phase starts from build.exit; a canceled job runs only "after" stages).
# Each body runs in its own session so that SIGTERM/SIGINT to the sequencer can stop the whole
# stage: its process group gets SIGTERM, SIGKILL 3 s later, and the job becomes "failed"
# (timeout) or "canceled". Processes a stage leaves behind are killed when it ends. The phase
# exits with the first failing step's code, 0 otherwise.

R="${SKYRUNNER_RUN_DIR:?SKYRUNNER_RUN_DIR is not set}"
phase="${1:?usage: sequencer.sh prepare|build|finish}"
results="${SKYRUNNER_RESULTS:-$R/$phase.results}"
after_timeout="${SKYRUNNER_AFTER_SCRIPT_TIMEOUT:-300}"
if [ -n "${SKYRUNNER_SHELL:-}" ]; then
  body_shell="$SKYRUNNER_SHELL"
elif command -v bash >/dev/null 2>&1; then
  body_shell=bash
else
  body_shell=sh
fi
if command -v setsid >/dev/null 2>&1; then own_session=setsid; else own_session=""; fi

status=success
exit_code=0
stopping=0
child=""

# Section markers carry the time in seconds. bash (4.2 and later) reads the clock itself, with
# printf's %(%s)T; any other sh needs a date process, twice per stage.
now=""
[ -n "${BASH_VERSION:-}" ] && printf -v now '%(%s)T' -1 2>/dev/null
case "$now" in
  "" | *[!0-9]*) read_clock() { now=$(date +%s); } ;;
  *) read_clock() { printf -v now '%(%s)T' -1; } ;;
esac

marker() { # $1 start|end, $2 stage
  if [ "${SKYRUNNER_SECTIONS:-1}" = 1 ]; then
    read_clock
    printf 'section_%s:%s:%s\r\033[0K' "$1" "$now" "$2"
  fi
}

kill_stage() { # $1 signal: the running stage's whole process group, or the body alone
  [ -n "$child" ] || return 0
  kill -s "$1" -- "-$child" 2>/dev/null || kill -s "$1" "$child" 2>/dev/null
}

stop_requested() { # $1 reasons, "|"-separated: is a line reason, skyrunner.io/stop="reason"?
  [ -n "${SKYRUNNER_STOP_FILE:-}" ] && [ -r "$SKYRUNNER_STOP_FILE" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#skyrunner.io/stop=}"
    line="${line#\"}"
    line="${line%\"}"
    case "$line" in "" | *"|"*) continue ;; esac
    case "|$1|" in *"|$line|"*) return 0 ;; esac
  done 2>/dev/null <"$SKYRUNNER_STOP_FILE"
  return 1
}

on_stop() {
  [ "$stopping" = 1 ] && return 0
  stopping=1
  if stop_requested timeout; then
    status=failed
  else
    status=canceled
  fi
  kill_stage TERM
  stopped_child="$child"
  (sleep 3; kill -s KILL -- "-$stopped_child" 2>/dev/null) >/dev/null 2>&1 &
}
trap on_stop TERM INT

run_body() { # $1 stage; sets $code
  $own_session $body_shell "$R/stages/$1.sh" </dev/null &
  child=$!
  printf '%s\n' "$child" >"$R/$phase.stage-pid"
  wait "$child"
  code=$?
  if [ "$stopping" = 1 ]; then
    wait "$child" 2>/dev/null
    code=$?
  fi
  kill_stage KILL
  child=""
}

run_after() { # $1 stage: after_script rules, with its own timeout
  CI_JOB_STATUS="$status"
  export CI_JOB_STATUS
  run_body_with_timeout "$1"
  if [ "$code" != 0 ]; then
    printf '\033[0;33mWARNING: %s failed, but job will continue unaffected: exit code %s\033[0;m\n' "$1" "$code"
  fi
}

run_body_with_timeout() {
  $own_session $body_shell "$R/stages/$1.sh" </dev/null &
  child=$!
  printf '%s\n' "$child" >"$R/$phase.stage-pid"
  watched="$child"
  # The watchdog must not leave its sleep behind when it is stopped early, even right after
  # it started: the trap only records the stop, and the sleep is killed once its pid is known.
  sh -c 'stop=0; nap=""; trap "stop=1; [ -n \"\$nap\" ] && kill \$nap" TERM
         sleep "$1" & nap=$!
         [ "$stop" = 1 ] && kill "$nap"
         wait "$nap"; [ "$stop" = 1 ] && exit 0
         kill -s TERM -- "-$2" 2>/dev/null || kill -s TERM "$2"' watchdog "$after_timeout" "$watched" \
    >/dev/null 2>&1 &
  watchdog=$!
  wait "$child"
  code=$?
  kill "$watchdog" 2>/dev/null
  kill_stage KILL
  child=""
}

should_run() { # $1 when, $2 kind
  [ "$2" = after ] && return 0
  [ "$stopping" = 1 ] && return 1
  case "$status:$1" in
    success:on_success | success:always | failed:on_failure | failed:always) return 0 ;;
  esac
  return 1
}

run_phase() {
  while read -r stage when kind; do
    [ -n "$stage" ] || continue
    should_run "$when" "$kind" || continue
    marker start "$stage"
    if [ "$kind" = after ]; then run_after "$stage"; else run_body "$stage"; fi
    marker end "$stage"
    printf '%s=%s\n' "$stage" "$code" >>"$results"
    if [ "$kind" = step ] && [ "$code" != 0 ] && [ "$stopping" = 0 ]; then
      [ "$exit_code" = 0 ] && exit_code="$code"
      status=failed
    fi
  done <"$R/phases/$phase"
}

if [ "$phase" = finish ]; then
  while [ ! -f "$R/build.exit" ]; do sleep 0.2 2>/dev/null || sleep 1; done
  build_status=$(cat "$R/build.exit")
  status="${build_status%%:*}"
  [ "$status" = canceled ] && exit 0
fi

stop_requested "timeout|canceled" && on_stop

run_phase

if [ "$phase" = build ]; then
  [ "$stopping" = 1 ] && [ "$exit_code" = 0 ] && exit_code=143
  printf '%s:%s\n' "$status" "$exit_code" >"$R/build.exit.tmp" && mv "$R/build.exit.tmp" "$R/build.exit"
fi
exit "$exit_code"
