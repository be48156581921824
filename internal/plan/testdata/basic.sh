#!/bin/sh
# pgaegis fix plan 20261201-120000-abcd
# target: PostgreSQL 15.8 at 127.0.0.1:5432
# 6 step(s) closing 7 finding(s); needs a restart
# manual: BKP-02 archive_mode: set up WAL archiving (an archive command that works), then archive_mode = on
# held back: NET-01 listen_addresses: excluded by --exclude
# run as the cluster's OS user; PGHOST, PGPORT, PGUSER, PGDATABASE select the server
set -eu
pgaegis_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
pgaegis_reload() { pgaegis_psql -c 'SELECT pg_reload_conf()' >/dev/null; }

# step 1: issue a server certificate (takes effect at once)
#   closes TLS-01 ssl (high)
pgaegis tls issue server --out '/srv/pg data/certs'

# step 2: restrict the data directory (takes effect at once)
#   closes FILE-01 /srv/pg data (high)
chmod 0700 -- '/srv/pg data'

# step 3: revoke PUBLIC's privileges on public.t (takes effect at once)
#   closes PRIV-08 table public.t (medium)
pgaegis_psql -d 'dbname='\''shop'\''' -f - <<'PGAEGIS_SQL'
BEGIN;
REVOKE INSERT ON TABLE public.t FROM PUBLIC;
REVOKE SELECT ON TABLE public.t FROM PUBLIC;
COMMIT;
PGAEGIS_SQL

# step 4: turn ssl on (takes effect on reload)
#   closes TLS-01 ssl (high)
#   after step 1
pgaegis_psql -c 'ALTER SYSTEM SET ssl = '\''on'\'';'
pgaegis_reload

# step 5: rewrite pg_hba.conf (takes effect on reload)
#   closes AUTH-01 hba rule: host all all 0.0.0.0/0 trust (critical)
#   closes AUTH-05 hba rule: host all all 0.0.0.0/0 trust (high)
#   can break: clients still using md5 passwords will fail: roles app, etl have md5 verifiers
#   after step 4
cp -p -- '/srv/pg data/pg_hba.conf' '/srv/pg data/pg_hba.conf.pgaegis-20261201-120000-abcd.bak'
cp -p -- '/srv/pg data/pg_hba.conf' '/srv/pg data/pg_hba.conf.pgaegis-new'
cat > '/srv/pg data/pg_hba.conf.pgaegis-new' <<'PGAEGIS_HBA'
local all all peer
hostssl all all 0.0.0.0/0 scram-sha-256
host all all 0.0.0.0/0 reject
PGAEGIS_HBA
mv -f -- '/srv/pg data/pg_hba.conf.pgaegis-new' '/srv/pg data/pg_hba.conf'
pgaegis_reload

# step 6: load pgaudit and auth_delay (takes effect on restart)
#   closes AUTH-14 auth_delay (medium)
#   closes LOG-26 pgaudit (medium)
pgaegis_psql -c 'ALTER SYSTEM SET shared_preload_libraries = '\''pgaudit'\'', '\''auth_delay'\'';'
pgaegis_psql -c 'ALTER SYSTEM SET auth_delay.milliseconds = '\''500'\'';'

# ==== RESTART NEEDED: step 6 take(s) effect only when the server restarts ====
if [ "${PGAEGIS_RESTART:-}" = 1 ]; then
	"${PG_CTL:-pg_ctl}" restart -D "${PGDATA:?set PGDATA to the data directory}" -m fast -w
else
	echo 'pgaegis: restart the server for the remaining steps (or run again with PGAEGIS_RESTART=1 PGDATA=... [PG_CTL=...])' >&2
fi
