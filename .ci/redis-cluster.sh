#!/usr/bin/env bash
# Starts a 3-master Redis Cluster on 127.0.0.1:7000-7002 with Debian's
# redis-server, unless one already answers. Nothing is kept on disk.
set -euo pipefail
dir=${REDIS_CLUSTER_DIR:-/tmp/latchkey-redis-cluster}
if redis-cli -p 7000 cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
  exit 0
fi
mkdir -p "$dir"
for port in 7000 7001 7002; do
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    mkdir -p "$dir/$port"
    rm -f "$dir/$port/nodes.conf"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$port/nodes.conf" --dir "$dir/$port" \
      --save '' --appendonly no --daemonize yes --logfile "$dir/$port/redis.log"
  fi
done
for _ in $(seq 50); do
  redis-cli -p 7000 ping >/dev/null 2>&1 && redis-cli -p 7001 ping >/dev/null 2>&1 && redis-cli -p 7002 ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 100); do
  redis-cli -p 7000 cluster info | grep -q 'cluster_state:ok' && exit 0
  sleep 0.1
done
echo "redis cluster did not become ready" >&2
exit 1
