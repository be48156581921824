-- pgaegis fix plan 20261201-120000-abcd
-- target: PostgreSQL 15.8 at 127.0.0.1:5432
-- 6 step(s) closing 7 finding(s); needs a restart
-- manual: BKP-02 archive_mode: set up WAL archiving (an archive command that works), then archive_mode = on
-- held back: NET-01 listen_addresses: excluded by --exclude
-- run with: psql -X -f THIS_FILE (as a superuser; file steps are comments only)
\set ON_ERROR_STOP on
SELECT 'dbname=''' || replace(replace(current_database(), '\', '\\'), '''', '\''') || '''' AS pgaegis_home \gset

-- step 1: issue a server certificate (takes effect at once)
--   closes TLS-01 ssl (high)
-- run: pgaegis tls issue server --out '/srv/pg data/certs'

-- step 2: restrict the data directory (takes effect at once)
--   closes FILE-01 /srv/pg data (high)
-- chmod 0700 '/srv/pg data'

-- step 3: revoke PUBLIC's privileges on public.t (takes effect at once)
--   closes PRIV-08 table public.t (medium)
\connect -reuse-previous=on 'dbname=''shop'''
BEGIN;
REVOKE INSERT ON TABLE public.t FROM PUBLIC;
REVOKE SELECT ON TABLE public.t FROM PUBLIC;
COMMIT;

-- step 4: turn ssl on (takes effect on reload)
--   closes TLS-01 ssl (high)
--   after step 1
ALTER SYSTEM SET ssl = 'on';
SELECT pg_reload_conf();

-- step 5: rewrite pg_hba.conf (takes effect on reload)
--   closes AUTH-01 hba rule: host all all 0.0.0.0/0 trust (critical)
--   closes AUTH-05 hba rule: host all all 0.0.0.0/0 trust (high)
--   can break: clients still using md5 passwords will fail: roles app, etl have md5 verifiers
--   after step 4
-- write /srv/pg data/pg_hba.conf with this content, then SELECT pg_reload_conf();
--| local all all peer
--| hostssl all all 0.0.0.0/0 scram-sha-256
--| host all all 0.0.0.0/0 reject

-- step 6: load pgaudit and auth_delay (takes effect on restart)
--   closes AUTH-14 auth_delay (medium)
--   closes LOG-26 pgaudit (medium)
ALTER SYSTEM SET shared_preload_libraries = 'pgaudit', 'auth_delay';
ALTER SYSTEM SET auth_delay.milliseconds = '500';
-- these take effect when the server restarts
