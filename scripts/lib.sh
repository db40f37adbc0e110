# Shared by the scripts that install what this machine lacks. Source it after defining `say` (the caller's
# prefixed message to stderr).

# Runs a command as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; return 1; fi; }

# apt_install "WHAT TO DO WITHOUT APT" PACKAGE...: installs Debian packages quietly, or exits saying what to do.
apt_install() {
  local without_apt=$1; shift
  command -v apt-get >/dev/null 2>&1 || { say "missing $* and no apt-get to install them: $without_apt"; exit 1; }
  say "installing $* from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
