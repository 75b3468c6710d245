set -eu
cd "/home/test/tests/a"
REBOOT() { { set +xu; } 2> /dev/null; if [ -z "$1" ]; then echo '<REBOOT>'; else echo "<REBOOT $1>"; fi; exit 213; }
ERROR() { { set +xu; } 2> /dev/null; if [ -z "$1" ]; then echo '<ERROR>'; else echo "<ERROR $*>"; fi; exit 213; }
MATCH() (
  { set +xu; } 2> /dev/null
  [ $# -gt 0 ] || { echo "error: missing regexp argument"; return 1; }
  local stdin; stdin="$(cat)"
  grep -q -E "$@" <<< "$stdin" || {
    local status=$?
    printf 'grep error: pattern not found, got:\n%s\n' "$stdin" >&2
    if [ $status != 1 ]; then echo "unexpected grep exit status: $status"; fi
    return 1
  }
)
NOMATCH() (
  { set +xu; } 2> /dev/null
  [ $# -gt 0 ] || { echo "error: missing regexp argument"; return 1; }
  local stdin; stdin="$(cat)"
  if printf '%s\n' "$stdin" | grep -q -E "$@"; then
    printf "NOMATCH pattern='%s' found in:\n%s\n" "$*" "$stdin" >&2
    return 1
  fi
)
export DEBIAN_FRONTEND=noninteractive
export DEBIAN_PRIORITY=critical
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin
export SPREAD_JOB="adhoc:ubuntu-16.04:tests/a"
export A="x"
export B=
export C="quoted"
export D="$A/y"
export E='single'
set -x

(
echo hello
  MATCH x <<< x
) < /dev/null
