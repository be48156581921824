#!/usr/bin/env bash
# How fast pgaegis serve answers over a large history: 1,000 servers ×
# 100 scans (60 findings each, 6 M finding rows) generated into SQLite
# through store.PutScan, then N sequential requests of the fleet page, a
# server page and /metrics with a bearer token; p50/p99 per path.
# The store is generated once and kept (about 11 minutes on 2 cores):
#   bash bench/serve/run.sh [N]            (N requests per path, default 200)
#   PGAEGIS_BENCH_SERVE_SIZE=100x20 bash bench/serve/run.sh   (a small store)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
size=${PGAEGIS_BENCH_SERVE_SIZE:-1000x100}
servers=${size%x*}; scans=${size#*x}
cache=${PGAEGIS_BENCH_SERVE_DIR:-/var/tmp/pgaegis-bench-serve}
mkdir -p "$cache"
db="$cache/fleet-${servers}x${scans}x60.db"
work=$(mktemp -d /tmp/pgaegis-bench-serve.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
if [ ! -s "$db" ]; then
  echo "generating $db ($servers servers × $scans scans)..."
  go run ./bench/serve gen -store "$db" -servers "$servers" -scans "$scans" -findings 60
fi
go build -o "$work/pgaegis" ./cmd/pgaegis
"$work/pgaegis" serve token create --store "$db" --role read-only --name "bench-$$" > "$work/token" 2>/dev/null
port=$((27000 + RANDOM % 1000))
"$work/pgaegis" serve --store "$db" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.2; done
# The first request builds the fleet view (every server's latest scans
# summarised); its time is shown apart, then the steady state.
t0=$(date +%s%N)
curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$work/token")" "http://127.0.0.1:$port/metrics"
echo "first /metrics (builds the fleet view, or waits for the warm-up): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
server=$(printf 'db-%04d' $((servers / 2)))
go run ./bench/serve measure -url "http://127.0.0.1:$port" -token-file "$work/token" -n "$N" \
  / "/?page=5" "/servers/$server" "/servers/$server?status=all" "/servers/$server/history?rule=R-003&object=role%20r3" /certificates /metrics
go run ./bench/serve measure -url "http://127.0.0.1:$port" -token-file "$work/token" -n "$(( N / 4 > 0 ? N / 4 : 1 ))" "/metrics?detail=rules"
# How long the background rebuilds of the fleet view take (the p99s
# above include requests served while one ran beside them).
curl -sf -H "Authorization: Bearer $(cat "$work/token")" "http://127.0.0.1:$port/metrics" | grep '^pgaegis_dashboard_fleet_build_seconds' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$work/pgaegis" serve token revoke --store "$db" "bench-$$" >/dev/null
