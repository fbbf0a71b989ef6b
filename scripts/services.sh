#!/usr/bin/env bash
# Makes sure the services the tests talk to are up on this machine: PostgreSQL
# (127.0.0.1:5432), Redis (127.0.0.1:6379) and NATS with JetStream (127.0.0.1:4222).
# Each one that does not answer is started with the machine's own command for it; a
# service that cannot be started fails the run with a message saying which.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  local name=$1 port=$2
  for _ in $(seq 1 100); do
    up "$port" && return 0
    sleep 0.1
  done
  echo "scripts/services.sh: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

ensure() {
  local name=$1 port=$2
  shift 2
  if up "$port"; then
    return 0
  fi
  echo "scripts/services.sh: starting $name" >&2
  "$@" >/dev/null 2>&1 || true
  wait_up "$name" "$port"
}

ensure PostgreSQL 5432 sh -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start'
ensure Redis 6379 sh -c 'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
ensure NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
