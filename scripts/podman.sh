#!/usr/bin/env bash
# Makes sure Podman's Docker-compatible API answers, installing Podman where this machine lacks it.
#   scripts/podman.sh ensure    install podman and catatonit (Debian's packages) if missing, start the API service
#                               (`podman system service --time=0 unix://SOCKET`) if nothing answers on its socket
#   scripts/podman.sh host      print the DOCKER_HOST that reaches it: unix://SOCKET
#   scripts/podman.sh restart   restart the service through what runs it: this script, or systemd (used by tests)
#   scripts/podman.sh restartable   print how restart would do it (script, systemd), or exit 1 saying why it cannot
#   scripts/podman.sh stop
#   scripts/podman.sh owned     exit 0 when the running service is one this script started
# SOCKET is /run/podman/podman.sock as root (rootful Podman), $XDG_RUNTIME_DIR/podman/podman.sock otherwise
# (rootless), or AGENT_SANDBOX_PODMAN_SOCKET. A service that systemd (podman.socket) or anything else runs is left
# alone. Containers outlive the API service: conmon, not the service, keeps them.
set -euo pipefail

state_dir="${AGENT_SANDBOX_PODMAN_STATE:-/tmp/agent-sandboxes-podman-$(id -u)}"
if [ -n "${AGENT_SANDBOX_PODMAN_SOCKET:-}" ]; then sock=$AGENT_SANDBOX_PODMAN_SOCKET
elif [ "$(id -u)" = 0 ]; then sock=/run/podman/podman.sock
else sock="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock"; fi
log="$state_dir/podman-service.log"
pidfile="$state_dir/podman-service.pid"

say() { printf 'podman: %s\n' "$*" >&2; }
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

answers() { curl -sf --max-time 5 --unix-socket "$sock" http://d/v1.41/version >/dev/null 2>&1; }

install_podman() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  # Podman's --init (an init as PID 1, which every sandbox has) is catatonit.
  [ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null 2>&1 || missing+=(catatonit)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "install Podman (https://podman.io/docs/installation) and catatonit" "${missing[@]}"
}

service_pid() {
  local pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # The pid is ours only while it is still this very service (pids are reused).
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "system service .*unix://$sock" || return 1
  echo "$pid"
}

owned() { service_pid >/dev/null; }

start_service() {
  mkdir -p "$state_dir" "$(dirname "$sock")"
  # A socket file left by a service that died keeps a new one from listening.
  [ -S "$sock" ] && ! answers && rm -f "$sock"
  say "starting podman system service on unix://$sock (log: $log)"
  # From /: conmon, which runs every container, inherits the working directory and fails once it is deleted
  # (a test run's clone, say).
  (cd / && exec setsid podman system service --time=0 "unix://$sock") >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then
      say "Podman's API answers on unix://$sock ($(podman version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.25
  done
  say "podman system service did not answer on unix://$sock; its log ends with:"; tail -20 "$log" >&2; exit 1
}

# How the running service can be restarted safely: "script" (this script started it) or "systemd" (socket
# activation: podman.socket, whose podman.service a restart ends and the next request starts again).
restart_method() {
  if owned; then echo script; return 0; fi
  local user=()
  [ "$(id -u)" = 0 ] || user=(--user)
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl "${user[@]}" is-active --quiet podman.socket 2>/dev/null; then
    echo systemd; return 0
  fi
  if answers; then echo "the service on unix://$sock was started by hand or by a manager other than systemd, so only its own start command knows how to start it again"
  else echo "no Podman API service answers on unix://$sock"; fi
  return 1
}

restart_service() {
  local method
  method=$(restart_method) || { say "not restarting Podman's service: $method"; exit 1; }
  case "$method" in
    script) stop_service; start_service ;;
    systemd)
      local user=()
      [ "$(id -u)" = 0 ] || user=(--user)
      say "restarting Podman's service through systemd (systemctl ${user[*]} restart podman.service)"
      systemctl "${user[@]}" restart podman.service
      for _ in $(seq 1 120); do answers && return 0; sleep 0.25; done
      say "Podman's service did not answer within 30 s of systemctl restart podman.service"; exit 1 ;;
  esac
}

stop_service() {
  local pid
  if ! pid=$(service_pid); then
    answers && { say "the service on unix://$sock was not started by this script: leaving it alone"; exit 1; }
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }; sleep 0.1; done
  say "podman system service ($pid) did not stop"; exit 1
}

case "${1:-ensure}" in
  ensure) install_podman; answers || start_service ;;
  host) echo "unix://$sock" ;;
  restart) restart_service ;;
  restartable) restart_method ;;
  stop) stop_service ;;
  owned) owned ;;
  *) say "usage: $0 ensure|host|restart|restartable|stop|owned"; exit 2 ;;
esac
