/**
 * The helper functions every script can call, injected as bash function
 * definitions (spec §5.6). They report to spread with a marker line plus
 * exit status 213 (REBOOT, ERROR, FATAL) or a plain marker line (ADDRESS).
 * Their messages are the original's, word for word: projects grep for them.
 */

/** Quietly drop tracing and nounset inside a helper, so its own lines never show. */
const QUIET = '{ set +xu; } 2> /dev/null';

export const REBOOT = `REBOOT() { ${QUIET}; if [ -z "$1" ]; then echo '<REBOOT>'; else echo "<REBOOT $1>"; fi; exit 213; }`;

export const ERROR = `ERROR() { ${QUIET}; if [ -z "$1" ]; then echo '<ERROR>'; else echo "<ERROR $*>"; fi; exit 213; }`;

export const FATAL = `FATAL() { ${QUIET}; if [ -z "$1" ]; then echo '<FATAL>'; else echo "<FATAL $*>"; fi; exit 213; }`;

export const ADDRESS = `ADDRESS() { ${QUIET}; if [ -z "$1" ]; then echo '<ADDRESS>'; else echo "<ADDRESS $1>"; fi; }`;

/**
 * MATCH and NOMATCH read all of stdin first (so a pipeline never sees a
 * closed pipe), run in a subshell (so they never change the caller's
 * options), and use extended regular expressions.
 */
export const MATCH = `MATCH() (
  ${QUIET}
  [ $# -gt 0 ] || { echo "error: missing regexp argument"; return 1; }
  local stdin; stdin="$(cat)"
  grep -q -E "$@" <<< "$stdin" || {
    local status=$?
    printf 'grep error: pattern not found, got:\\n%s\\n' "$stdin" >&2
    if [ $status != 1 ]; then echo "unexpected grep exit status: $status"; fi
    return 1
  }
)`;

export const NOMATCH = `NOMATCH() (
  ${QUIET}
  [ $# -gt 0 ] || { echo "error: missing regexp argument"; return 1; }
  local stdin; stdin="$(cat)"
  if printf '%s\\n' "$stdin" | grep -q -E "$@"; then
    printf "NOMATCH pattern='%s' found in:\\n%s\\n" "$*" "$stdin" >&2
    return 1
  fi
)`;

/** Helpers of scripts run on machines. */
export const REMOTE_HELPERS = [REBOOT, ERROR, MATCH, NOMATCH] as const;
/** Helpers of scripts run on this host (adhoc allocate/discard, repack). */
export const LOCAL_HELPERS = [ADDRESS, FATAL, ERROR, MATCH, NOMATCH] as const;

export const FIXED_EXPORTS = [
  'export DEBIAN_FRONTEND=noninteractive',
  'export DEBIAN_PRIORITY=critical',
  'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin',
] as const;

/**
 * The sync helpers of multi-machine tasks (docs/tasks.md), defined only in
 * the task scripts of such jobs. Each call is one request to the runner's
 * sync service over bash's /dev/tcp, to the port the runner forwarded to
 * this machine's loopback over its SSH connection ($SPREAD_SYNC_PORT),
 * with this instance's token ($SPREAD_SYNC_TOKEN). They run in subshells,
 * so tracing and options of the caller are left alone; a failure (a
 * timeout, another instance failed) prints an ERROR marker to stderr and
 * returns 213, which ends the script under `set -e` with that message.
 */
const SYNC_CALL = `_spread_sync() {
  local fd line n i
  exec {fd}<>"/dev/tcp/127.0.0.1/\${SPREAD_SYNC_PORT:-0}" 2> /dev/null || { echo "cannot reach the sync service of spread on 127.0.0.1:\${SPREAD_SYNC_PORT:-?}"; return 1; }
  printf '%s %s\\n' "\${SPREAD_SYNC_TOKEN:-}" "$*" >&$fd
  IFS= read -r line <&$fd || line='err the sync service of spread hung up'
  case "$line" in
    ok) ;;
    "ok "*) n=\${line#ok }
      if [ "$1" = read ]; then
        for ((i = 0; i < n; i++)); do IFS= read -r line <&$fd; printf '%s\\n' "$line"; done
      else
        printf '%s\\n' "$n"
      fi ;;
    *) exec {fd}>&-; printf '%s\\n' "\${line#err }"; return 1 ;;
  esac
  exec {fd}>&-
}`;

const syncHelper = (name: string, usage: string, check: string, call: string): string => `${name}() (
  ${QUIET}
  local out
  ${check} || { echo "<ERROR usage: ${usage}>" >&2; exit 213; }
  if out=$(${call}); then [ -z "$out" ] || printf '%s\\n' "$out"; else echo "<ERROR ${name} $*: $out>" >&2; exit 213; fi
)`;

const TIMEOUT_ARG = (n: number): string => `"\${${n}:-\${SPREAD_SYNC_TIMEOUT:-5m}}"`;

export const SYNC_HELPERS = [
  SYNC_CALL,
  syncHelper('SIGNAL', 'SIGNAL state', '[ $# -eq 1 ]', '_spread_sync signal "$1"'),
  syncHelper('BARRIER', 'BARRIER state count [timeout]', '[ $# -ge 2 ] && [ $# -le 3 ]', `_spread_sync barrier "$1" "$2" ${TIMEOUT_ARG(3)}`),
  syncHelper('SIGNAL_AND_WAIT', 'SIGNAL_AND_WAIT state [timeout]', '[ $# -ge 1 ] && [ $# -le 2 ]',
    `{ seq=$(_spread_sync signal "$1") || { echo "$seq"; false; }; } && _spread_sync barrier "$1" "$SPREAD_INSTANCES" ${TIMEOUT_ARG(2)} && echo "$seq"`),
  syncHelper('PUBLISH', 'PUBLISH topic message... (one line)', "[ $# -ge 2 ] && [[ $* != *$'\\n'* ]]", '_spread_sync publish "$@"'),
  syncHelper('READ', 'READ topic count [timeout]', '[ $# -ge 2 ] && [ $# -le 3 ]', `_spread_sync read "$1" "$2" ${TIMEOUT_ARG(3)}`),
] as const;
