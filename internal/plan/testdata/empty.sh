#!/bin/sh
# pgaegis fix plan 20261201-120000-0000
# target: files in /srv/pg
# 0 step(s) closing 0 finding(s)
# run as the cluster's OS user; PGHOST, PGPORT, PGUSER, PGDATABASE select the server
set -eu
pgaegis_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
pgaegis_reload() { pgaegis_psql -c 'SELECT pg_reload_conf()' >/dev/null; }
