#!/usr/bin/env bash
# What an encrypted, self-checking backup costs: `pgaegis backup` against
# the guide's pipeline (pg_dump | gzip | age -R, which proves nothing about
# what it wrote), the same with zstd, and pg_dump alone (-Fc -Z0: the floor,
# what reading the database costs; -Fc default: pg_dump's own gzip), on one
# local 15 server, in one run, best of RUNS each.
#
# The database (pgbench -s 100 and a ~700 MB table of random-ish words, so
# compression has realistic work, ~2.3 GB) is built once and kept under
# ${PGAEGIS_BENCH_DIR:-/var/tmp/pgaegis-bench}/backup; later runs start it
# again in seconds. REBUILD=1 builds it again.
#
# Usage: bash bench/backup/run.sh            (RUNS=3 DOC_ROWS=1250000 SCALE=100)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
SCALE=${SCALE:-100}
DOC_ROWS=${DOC_ROWS:-1250000}
BIN=${PGBIN:-/usr/lib/postgresql/15/bin}
dir=${PGAEGIS_BENCH_DIR:-/var/tmp/pgaegis-bench}/backup
data=$dir/data
mkdir -p "$dir"
chmod 0755 "$dir" "$(dirname "$dir")"
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$((27000 + RANDOM % 1000))
sock=$(mktemp -d /tmp/pgaegis-bench-backup.XXXXXX) # the socket and the outputs; not kept
chmod 0755 "$sock"
[ "$(id -u)" = 0 ] && chown postgres "$sock"
out=$sock/out
mkdir -p "$out"
cleanup() { as_pg "$BIN/pg_ctl -D $data -m fast stop" >/dev/null 2>&1 || true; rm -rf "$sock"; }
trap cleanup EXIT

if [ "${REBUILD:-}" = 1 ]; then rm -rf "$data" "$dir/generated"; fi
if [ ! -f "$dir/generated" ]; then
  rm -rf "$data"
  as_pg "$BIN/initdb -D $data -U postgres --auth-local=trust --auth-host=scram-sha-256" >/dev/null
fi
# fsync is off only while the data is generated (then a checkpoint);
# pg_dump's reads do not depend on it.
fsync=on
[ -f "$dir/generated" ] || fsync=off
as_pg "$BIN/pg_ctl -D $data -l $dir/log -o '-k $sock -p $port -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_wal_size=8GB -c shared_buffers=512MB' -w start" >/dev/null
psql() { "$BIN/psql" -qAtX -h "$sock" -p "$port" -U postgres "$@"; }

if [ ! -f "$dir/generated" ]; then
  t0=$(date +%s)
  echo "generating the database (once; kept in $dir)..." >&2
  # SQL_ASCII: substr() of the word corpus is then O(1), not a scan of
  # multibyte characters from its start.
  psql -d postgres -c "CREATE DATABASE bench ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
  "$BIN/pgbench" -i -q -s "$SCALE" -I dtGvp -h "$sock" -p "$port" -U postgres bench >/dev/null 2>&1
  # ~570-byte rows: two md5s and 500 bytes cut from a ~4.5 MB corpus of
  # pseudo-words (longer than gzip's 32 kB window and zstd -3's 2 MB one, as real text repeats
  # far apart).
  psql -d bench -c "CREATE TABLE docs (id bigint PRIMARY KEY, body text)" -c "
    INSERT INTO docs
    WITH c AS MATERIALIZED (
      SELECT string_agg(translate(substr(md5(floor(random() * 3000)::int::text), 1, 3 + floor(random() * 7)::int),
                                  '0123456789', 'ghijklmnop'), ' ') AS t
      FROM generate_series(1, 600000))
    SELECT g, md5(g::text) || ' ' || substr(c.t, 1 + ((g::bigint * 7919) % (length(c.t) - 600))::int, 500) || ' ' || md5((-g)::text)
    FROM c, generate_series(1, $DOC_ROWS) g" -c "VACUUM ANALYZE docs" -c CHECKPOINT
  echo "generated in $(( $(date +%s) - t0 )) s" >&2
  touch "$dir/generated"
  as_pg "$BIN/pg_ctl -D $data -m fast stop" >/dev/null
  as_pg "$BIN/pg_ctl -D $data -l $dir/log -o '-k $sock -p $port -c listen_addresses=127.0.0.1 -c shared_buffers=512MB' -w start" >/dev/null
fi

# A password for the TCP logins (scram), throwaway like the server.
pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
psql -d postgres -c "ALTER ROLE postgres PASSWORD '$pw'"
export PGPASSWORD=$pw
dbsize=$(psql -d bench -c "SELECT pg_database_size('bench')")
[ -f "$dir/key.txt" ] || age-keygen -o "$dir/key.txt" 2>/dev/null
grep -o 'age1[0-9a-z]*' "$dir/key.txt" > "$dir/recipients.txt"

# The pgaegis binary from this tree, if it has the backup command.
pgaegis=""
if go build -o "$sock/pgaegis" ./cmd/pgaegis 2>/dev/null && "$sock/pgaegis" --help 2>/dev/null | grep -q "^  backup "; then
  pgaegis=$sock/pgaegis
fi

conn="-h 127.0.0.1 -p $port -U postgres"
declare -A cmds
names=(floor pgdump-gzip guide-gzip-age zstd-age pgaegis pgaegis-level1)
cmds[floor]="$BIN/pg_dump $conn -Fc -Z0 bench | wc -c > $out/size"
cmds[pgdump-gzip]="$BIN/pg_dump $conn -Fc bench | wc -c > $out/size"
cmds[guide-gzip-age]="$BIN/pg_dump $conn bench | gzip | age -R $dir/recipients.txt > $out/f.sql.gz.age"
cmds[zstd-age]="$BIN/pg_dump $conn bench | zstd -q | age -R $dir/recipients.txt > $out/f.sql.zst.age"
cmds[pgaegis]="$pgaegis backup $conn -d bench --recipients $dir/recipients.txt --out $out/set >/dev/null"
# zstd's fastest level: what a 2-core host that dumps while serving would choose.
cmds[pgaegis-level1]="$pgaegis backup $conn -d bench --level 1 --recipients $dir/recipients.txt --out $out/set >/dev/null"
# CPU seconds are what a busy machine cannot hide: the pipeline's own
# (user + system of every process it ran) plus the server backend's,
# which the postmaster has reaped by then (its children's times).
pmpid=$(head -1 "$data/postmaster.pid")
tck=$(getconf CLK_TCK)
backend_cpu() {
  # A backend that has not been reaped yet (live or zombie) is not in
  # the postmaster's counts: wait for it.
  while ps --ppid "$pmpid" -o stat=,args= | grep -q -e '^Z' -e ' postgres bench'; do sleep 0.05; done
  awk -v t="$tck" '{print ($16 + $17) / t}' "/proc/$pmpid/stat"
}
declare -A best rss size cpu bcpu
for run in $(seq "$RUNS"); do
  for n in "${names[@]}"; do
    if [[ $n == pgaegis* ]] && [ -z "$pgaegis" ]; then continue; fi
    rm -rf "${out:?}"/*
    mkdir -p "$out/set"
    sync
    # %M of a shell running a pipeline is the largest process's peak RSS.
    b0=$(backend_cpu)
    /usr/bin/time -o "$sock/time" -f '%e %M %U %S' bash -o pipefail -c "${cmds[$n]}" || { echo "$n failed" >&2; exit 1; }
    b1=$(backend_cpu)
    read -r sec kb us ss < "$sock/time"
    if [ -f "$out/size" ]; then sz=$(cat "$out/size"); else sz=$(du -sb "$out" | cut -f1); fi
    if [ -z "${best[$n]:-}" ] || [ "$(echo "$sec < ${best[$n]}" | bc -l)" = 1 ]; then
      best[$n]=$sec; rss[$n]=$kb; size[$n]=$sz
      cpu[$n]=$(echo "$us + $ss" | bc -l); bcpu[$n]=$(echo "$b1 - $b0" | bc -l)
    fi
  done
done

echo "PostgreSQL $("$BIN/postgres" -V | awk '{print $3}'), database $(( dbsize / 1000000 )) MB (pgbench -s $SCALE + docs $DOC_ROWS rows), best of $RUNS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %8s %8s %9s %10s %9s %9s %8s %8s %9s  %s\n' row seconds "MB/s" "RSS MB" "out MB" "vs guide" "vs floor" "cpu s" "server s" "cpu/floor" command
for n in "${names[@]}"; do
  c=${cmds[$n]//$out\//}
  c=${c//$dir\//}
  c=${c//$BIN\//}
  c=${c//$sock\//}
  c=${c% >/dev/null}
  if [ -z "${best[$n]:-}" ]; then
    printf '%-16s %8s %8s %9s %10s %9s %9s %8s %8s %9s  %s\n' "$n" - - - - - - - - - "not run: this tree's pgaegis has no backup command yet"
    continue
  fi
  printf '%-16s %8.1f %8.0f %9.0f %10.0f %9.2f %9.2f %8.1f %8.1f %9.2f  %s\n' "$n" "${best[$n]}" \
    "$(echo "$dbsize / 1000000 / ${best[$n]}" | bc -l)" "$(echo "${rss[$n]} / 1024" | bc -l)" \
    "$(echo "${size[$n]} / 1000000" | bc -l)" \
    "$(echo "${best[$n]} / ${best[guide-gzip-age]}" | bc -l)" "$(echo "${best[$n]} / ${best[floor]}" | bc -l)" \
    "${cpu[$n]}" "${bcpu[$n]}" "$(echo "(${cpu[$n]} + ${bcpu[$n]}) / (${cpu[floor]} + ${bcpu[floor]})" | bc -l)" "$c"
done
# On N cores no row can finish faster than its CPU seconds / N: the
# floor's own CPU already fills most of a small machine.
echo "cpu s: the pipeline's processes (user+system); server s: the backend's; cpu/floor: both, against the floor's both"
echo "lower bound on $(nproc) cores for pgaegis: $(echo "(${cpu[pgaegis]:-0} + ${bcpu[pgaegis]:-0}) / $(nproc)" | bc -l | cut -c1-5) s; the floor's CPU alone needs $(echo "(${cpu[floor]} + ${bcpu[floor]}) / $(nproc)" | bc -l | cut -c1-5) s"
