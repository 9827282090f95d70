# Sourced by tools/setup.sh: `apt_wait ARGS…` runs `apt-get ARGS…`, waiting while another install (a second
# set-up, unattended-upgrades, an operator's apt) holds the package manager's lock instead of failing.
# dpkg's frontend lock is waited for by apt itself (DPkg::Lock::Timeout); the lists and archive locks are
# not, so a "Could not get lock" failure is retried every APT_WAIT_STEP seconds (default 5) until
# APT_WAIT_SECS (default 600) have passed. Any other failure is returned at once.
apt_wait() {
  local limit="${APT_WAIT_SECS:-600}" step="${APT_WAIT_STEP:-5}" waited=0 out code
  while :; do
    code=0
    # apt's output goes on to stderr as it comes, and is kept to tell a lock failure from any other.
    out=$(${SUDO:-} apt-get -o DPkg::Lock::Timeout="$limit" "$@" 2>&1 | tee /dev/stderr; exit "${PIPESTATUS[0]}") ||
      code=$?
    [ "$code" -eq 0 ] && return 0
    if ! printf '%s' "$out" | grep -qE 'Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock'; then
      return "$code"
    fi
    if [ "$waited" -ge "$limit" ]; then
      echo "setup: the package manager's lock was still held after ${limit}s; giving up" >&2
      return "$code"
    fi
    echo "setup: another install holds the package manager's lock; waiting (${waited}s of ${limit}s)" >&2
    sleep "$step"
    waited=$((waited + step))
  done
}
