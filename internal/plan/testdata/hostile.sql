-- pgaegis fix plan 20261201-120000-beef
-- target: evil\n; rm -rf / #
-- 6 step(s) closing 6 finding(s)
-- run with: psql -X -f THIS_FILE (as a superuser; file steps are comments only)
\set ON_ERROR_STOP on
SELECT 'dbname=''' || replace(replace(current_database(), '\', '\\'), '''', '\''') || '''' AS pgaegis_home \gset

-- step 1: a command with hostile arguments (takes effect at once)
--   closes TLS-01 ssl (high)
-- run: pgaegis tls issue server --out '/srv/pg/my dir/o'\\''brien' --host 'a\nb; touch pwned'

-- step 2: restrict /srv/pg/my dir/o'brien (takes effect at once)
--   closes FILE-02 file /srv/pg/my dir/o'brien\n-- DROP (high)
-- chmod 0700 '/srv/pg/my dir/o'\\''brien'

-- step 3: drop the role's login (takes effect at once)
--   closes ROLE-01 role a"; DROP TABLE x; -- (high)
\connect -reuse-previous=on 'dbname=''shop\nx\\'' host=evil \\\\'''
BEGIN;
ALTER ROLE "a""; DROP TABLE x; --" NOLOGIN;
COMMENT ON ROLE "a""; DROP TABLE x; --" IS E'x''\n\\; --';
COMMIT;

-- step 4: cluster-wide, back in the first database (takes effect at once)
--   closes ROLE-02 role a"; DROP TABLE x; -- (high)
\connect -reuse-previous=on :pgaegis_home
BEGIN;
ALTER ROLE "a""; DROP TABLE x; --" CONNECTION LIMIT 1;
COMMIT;

-- step 5: search_path and libraries with hostile elements (takes effect on reload)
--   closes SET-01 search_path (medium)
ALTER SYSTEM SET search_path = '$user', 'public', 'a"b, c';
ALTER SYSTEM SET log_line_prefix = E'%m [%p] '' \\n';
SELECT pg_reload_conf();

-- step 6: rewrite /srv/pg/my dir/o'brien/pg_hba $(touch pwned).conf (takes effect on reload)
--   closes AUTH-01 hba rule: local all all trust (critical)
-- write /srv/pg/my dir/o'brien/pg_hba $(touch pwned).conf with this content, then SELECT pg_reload_conf();
--| PGAEGIS_HBA
--| local all "a""; DROP TABLE x; --" reject
--| '$(touch pwned)'
