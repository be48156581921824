#!/usr/bin/env bash
# What a rotation costs: `pgaegis rotate` (generate, client-side SCRAM,
# quieted ALTER ROLE, a proving login, delivery, leak scan) against the
# guide's way (psql -c "ALTER ROLE ... PASSWORD '...'", which sends the
# clear text and proves nothing), on one throwaway local server, in one run.
# Usage: bash bench/rotate/run.sh [N] (N rotations each, default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20}
BIN=${PGBIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d /tmp/pgaegis-bench-rotate.XXXXXX)
chmod 0755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
port=$((26000 + RANDOM % 1000))
cleanup() { as_pg "$BIN/pg_ctl -D $work/data -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$work" "${secrets:-}"; }
trap cleanup EXIT
as_pg "$BIN/initdb -D $work/data -U postgres --auth-local=trust --auth-host=scram-sha-256" >/dev/null
secrets=$(mktemp -d /tmp/pgaegis-bench-secrets.XXXXXX) # ours, not the server's
as_pg "$BIN/pg_ctl -D $work/data -l $work/log -o '-k $work -p $port -c listen_addresses=127.0.0.1 -c log_statement=all' -w start" >/dev/null
go build -o "$work/pgaegis" ./cmd/pgaegis
conn="host=$work port=$port user=postgres dbname=postgres"
"$BIN/psql" -qAtX -d "$conn" -c "CREATE ROLE app LOGIN PASSWORD NULL" >/dev/null
ms() { date +%s%N; }
declare -a rot psq
for i in $(seq "$N"); do
  t0=$(ms)
  "$work/pgaegis" rotate app -d "$conn" --to-file "$secrets/app.pw" --verify "host=127.0.0.1 port=$port dbname=postgres" --format json --log-file "$work/log" > "$work/r.json"
  rot+=($(( ($(ms) - t0) / 1000 )))
done
for i in $(seq "$N"); do
  pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  t0=$(ms)
  "$BIN/psql" -qAtX -d "$conn" -c "ALTER ROLE app PASSWORD '$pw'" >/dev/null
  psq+=($(( ($(ms) - t0) / 1000 )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${rot[@]}"); mp=$(median "${psq[@]}")
echo "rotations: $N each, PostgreSQL $("$BIN/postgres" -V | awk '{print $3}'), log_statement=all, admin over the unix socket"
printf '%-58s %10s\n' "command" "median ms"
printf '%-58s %10.1f\n' "pgaegis rotate (whole process, proving login over TCP)" "$(echo "$mr/1000" | bc -l)"
printf '%-58s %10.1f\n' "psql -c \"ALTER ROLE app PASSWORD '...'\" (the guide)" "$(echo "$mp/1000" | bc -l)"
printf 'ratio pgaegis/psql: %.2f\n' "$(echo "$mr/$mp" | bc -l)"
echo "stages of the last rotation (ms): $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages_ms"])' "$work/r.json")"
echo "clear text in the server log: psql $(grep -c "PASSWORD '" "$work/log" || true) statements, pgaegis $(grep -c 'SCRAM-SHA-256\$' "$work/log" || true) verifiers"
