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
