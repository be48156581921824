-- pgaegis fix plan 20261201-120000-0000
-- target: files in /srv/pg
-- 0 step(s) closing 0 finding(s)
-- run with: psql -X -f THIS_FILE (as a superuser; file steps are comments only)
\set ON_ERROR_STOP on
SELECT 'dbname=''' || replace(replace(current_database(), '\', '\\'), '''', '\''') || '''' AS pgaegis_home \gset
