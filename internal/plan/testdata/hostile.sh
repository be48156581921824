#!/bin/sh
# pgaegis fix plan 20261201-120000-beef
# target: evil\n; rm -rf / #
# 6 step(s) closing 6 finding(s)
# run as the cluster's OS user; PGHOST, PGPORT, PGUSER, PGDATABASE select the server
set -eu
pgaegis_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
pgaegis_reload() { pgaegis_psql -c 'SELECT pg_reload_conf()' >/dev/null; }

# step 1: a command with hostile arguments (takes effect at once)
#   closes TLS-01 ssl (high)
pgaegis tls issue server --out '/srv/pg/my dir/o'\''brien' --host 'a
b; touch pwned'

# step 2: restrict /srv/pg/my dir/o'brien (takes effect at once)
#   closes FILE-02 file /srv/pg/my dir/o'brien\n-- DROP (high)
chmod 0700 -- '/srv/pg/my dir/o'\''brien'

# step 3: drop the role's login (takes effect at once)
#   closes ROLE-01 role a"; DROP TABLE x; -- (high)
pgaegis_psql -d 'dbname='\''shop
x\'\'' host=evil \\'\''' -f - <<'PGAEGIS_SQL'
BEGIN;
ALTER ROLE "a""; DROP TABLE x; --" NOLOGIN;
COMMENT ON ROLE "a""; DROP TABLE x; --" IS E'x''\n\\; --';
COMMIT;
PGAEGIS_SQL

# step 4: cluster-wide, back in the first database (takes effect at once)
#   closes ROLE-02 role a"; DROP TABLE x; -- (high)
pgaegis_psql -f - <<'PGAEGIS_SQL'
BEGIN;
ALTER ROLE "a""; DROP TABLE x; --" CONNECTION LIMIT 1;
COMMIT;
PGAEGIS_SQL

# step 5: search_path and libraries with hostile elements (takes effect on reload)
#   closes SET-01 search_path (medium)
pgaegis_psql -c 'ALTER SYSTEM SET search_path = '\''$user'\'', '\''public'\'', '\''a"b, c'\'';'
pgaegis_psql -c 'ALTER SYSTEM SET log_line_prefix = E'\''%m [%p] '\'''\'' \\n'\'';'
pgaegis_reload

# step 6: rewrite /srv/pg/my dir/o'brien/pg_hba $(touch pwned).conf (takes effect on reload)
#   closes AUTH-01 hba rule: local all all trust (critical)
cp -p -- '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf' '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf.pgaegis-20261201-120000-beef.bak'
cp -p -- '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf' '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf.pgaegis-new'
cat > '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf.pgaegis-new' <<'PGAEGIS_HBA_1'
PGAEGIS_HBA
local all "a""; DROP TABLE x; --" reject
'$(touch pwned)'
PGAEGIS_HBA_1
mv -f -- '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf.pgaegis-new' '/srv/pg/my dir/o'\''brien/pg_hba $(touch pwned).conf'
pgaegis_reload
