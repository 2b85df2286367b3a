# Shared by scripts/demo, scripts/test and scripts/setup (sourced, not run).

# as_root re-runs the calling script through sudo when it is not root. The
# demo and the tests need root for apt-get, for sshd logins as other users,
# for commands as uid 65534 and for a root nix-daemon; as root they run as
# they are. PATH is kept so sudo finds the same Go.
as_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  if command -v sudo >/dev/null; then
    exec sudo env PATH="$PATH" CI="${CI:-}" "$0" "$@"
  fi
  echo "$(basename "$0"): needs root (apt-get, logins as other users, a root nix-daemon): run it as root, or install sudo" >&2
  exit 1
}

# stage NAME CMD... runs one stage with a header and its duration, so a long
# silent step (the race build) is never a mystery.
stage() {
  local name=$1 start=$SECONDS
  shift
  printf '== %s\n' "$name"
  "$@"
  printf '== %s: done in %ds\n' "$name" $((SECONDS - start))
}

# go_on_path puts a Go toolchain on PATH if none is there yet.
go_on_path() {
  command -v go >/dev/null && return 0
  local g
  for g in /usr/local/go/bin /usr/lib/go/bin; do
    [ -x "$g/go" ] && export PATH="$g:$PATH" && return 0
  done
  echo "Go 1.26 or later is needed: https://go.dev/dl/" >&2
  exit 1
}
