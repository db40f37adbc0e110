#!/usr/bin/env bash
# Makes sure a Docker engine answers, installing and starting one where this machine lacks it.
#   scripts/engine.sh ensure    install (Debian's docker.io) if missing, start dockerd if nothing answers
#   scripts/engine.sh restart   stop the dockerd this script started and start it again (used by tests)
#   scripts/engine.sh stop
#   scripts/engine.sh owned     exit 0 when the running dockerd is one this script started
# A dockerd managed by systemd, Docker Desktop or anything else that already answers is left alone.
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
  restart) stop_engine; start_engine ;;
  stop) stop_engine ;;
  owned) owned ;;
  *) say "usage: $0 ensure|restart|stop"; exit 2 ;;
esac
