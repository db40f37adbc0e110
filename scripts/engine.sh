#!/usr/bin/env bash
# Makes sure a Docker engine answers, installing and starting one where this machine lacks it.
#   scripts/engine.sh ensure    install (Debian's docker.io) if missing, start dockerd if nothing answers
#   scripts/engine.sh restart   restart dockerd through what runs it: this script, or systemd (used by tests)
#   scripts/engine.sh restartable   print how restart would do it (script, systemd), or exit 1 saying why it cannot
#   scripts/engine.sh stop
#   scripts/engine.sh owned     exit 0 when the running dockerd is one this script started
# ensure leaves an engine that already answers alone. restart never restarts a dockerd started by hand or by a
# manager it does not know (Docker Desktop, a VM): only its own start command knows how it was started.
set -euo pipefail

state_dir="${AGENT_SANDBOX_ENGINE_STATE:-/tmp/agent-sandboxes-engine}"
log="$state_dir/dockerd.log"
pidfile="$state_dir/dockerd.pid"
sock="${DOCKER_HOST:-unix:///var/run/docker.sock}"

say() { printf 'engine: %s\n' "$*" >&2; }
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_engine() {
  if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then return 0; fi
  apt_install "install Docker (https://docs.docker.com/engine/install/) and start it" docker.io iptables
}

start_engine() {
  mkdir -p "$state_dir"
  case "$sock" in unix://*) ;; *) say "DOCKER_HOST=$sock does not answer and is not a local socket: start that engine"; exit 1;; esac
  say "starting dockerd (log: $log)"
  # From /, so that deleting the folder it was started from (a test run's clone) cannot affect it.
  (cd / && as_root setsid dockerd) >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers; then
      pgrep -x dockerd | head -1 >"$pidfile"
      say "dockerd answers ($(docker version --format '{{.Server.Version}}'))"
      return 0
    fi
    sleep 0.5
  done
  say "dockerd did not answer within 60 s; its log ends with:"; tail -20 "$log" >&2; exit 1
}

owned() {
  local pid
  pid=$(pgrep -x dockerd | head -1 || true)
  [ -n "$pid" ] && [ -f "$pidfile" ] && [ "$(cat "$pidfile")" = "$pid" ]
}

# How the running dockerd can be restarted safely: "script" (this script started it) or "systemd" (it is
# docker.service's main process); otherwise prints why not and fails.
restart_method() {
  local pid
  pid=$(pgrep -x dockerd | head -1 || true)
  if [ -z "$pid" ]; then echo "no dockerd runs on this machine (the engine at $sock is Docker Desktop, a remote host or another engine)"; return 1; fi
  if owned; then echo script; return 0; fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ "$(systemctl show -p MainPID --value docker.service 2>/dev/null)" = "$pid" ]; then
    echo systemd; return 0
  fi
  echo "the running dockerd (pid $pid) was started by hand or by a manager other than systemd, so only its own start command knows how to start it again"
  return 1
}

restart_engine() {
  local method
  method=$(restart_method) || { say "not restarting dockerd: $method"; exit 1; }
  case "$method" in
    script) stop_engine; start_engine ;;
    systemd)
      say "restarting dockerd through systemd (systemctl restart docker.service)"
      as_root systemctl restart docker.service
      for _ in $(seq 1 120); do answers && return 0; sleep 0.5; done
      say "dockerd did not answer within 60 s of systemctl restart docker.service"; exit 1 ;;
  esac
}

stop_engine() {
  local pid
  pid=$(pgrep -x dockerd | head -1 || true)
  [ -n "$pid" ] || return 0
  owned || { say "the running dockerd ($pid) was not started by this script: leaving it alone"; exit 1; }
  as_root kill "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  say "dockerd ($pid) did not stop"; exit 1
}

case "${1:-ensure}" in
  ensure) answers && exit 0; install_engine; answers || start_engine ;;
  restart) restart_engine ;;
  restartable) restart_method ;;
  stop) stop_engine ;;
  owned) owned ;;
  *) say "usage: $0 ensure|restart|restartable|stop|owned"; exit 2 ;;
esac
