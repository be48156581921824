-- pgaegis store, SQLite dialect, version 1.
-- Times are INTEGER microseconds since the Unix epoch (UTC): sortable and
-- indexable without SQLite's text date functions.
CREATE TABLE servers (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	labels     TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL
);

CREATE TABLE scans (
	id             INTEGER PRIMARY KEY,
	server_id      INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
	labels         TEXT NOT NULL DEFAULT '{}',
	started_at     INTEGER NOT NULL,
	finished_at    INTEGER NOT NULL,
	status         TEXT NOT NULL CHECK (status IN ('ok', 'unreachable', 'timeout', 'error')),
	message        TEXT NOT NULL DEFAULT '',
	tool_version   TEXT NOT NULL DEFAULT '',
	server_version TEXT NOT NULL DEFAULT '',
	fail_critical  INTEGER NOT NULL DEFAULT 0,
	fail_high      INTEGER NOT NULL DEFAULT 0,
	fail_medium    INTEGER NOT NULL DEFAULT 0,
	fail_low       INTEGER NOT NULL DEFAULT 0,
	fail_info      INTEGER NOT NULL DEFAULT 0,
	pass           INTEGER NOT NULL DEFAULT 0,
	not_checked    INTEGER NOT NULL DEFAULT 0,
	waived         INTEGER NOT NULL DEFAULT 0,
	snapshot       BLOB,
	findings       BLOB
);
-- A server's scans by time (latest scan, time ranges, the drift pair).
CREATE INDEX scans_server_time ON scans (server_id, started_at, id);
-- Latest reached scan of each server.
CREATE INDEX scans_server_status_time ON scans (server_id, status, started_at, id);
-- Fleet-wide periods (auditor evidence).
CREATE INDEX scans_time ON scans (started_at);

-- One row per finding, so that queries never decode the blobs. WITHOUT
-- ROWID clusters a scan's findings on its primary key: every query reads
-- findings scan by scan (a scan's findings, latest scans, periods, the
-- per-scan probes of a finding's history), and a rowid table made each
-- row a second, random lookup.
CREATE TABLE findings (
	scan_id    INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
	ord        INTEGER NOT NULL,
	server_id  INTEGER NOT NULL,
	rule       TEXT NOT NULL,
	status     TEXT NOT NULL,
	severity   INTEGER NOT NULL,
	area       TEXT NOT NULL DEFAULT '',
	title      TEXT NOT NULL DEFAULT '',
	object     TEXT NOT NULL DEFAULT '',
	location   TEXT NOT NULL DEFAULT '',
	evidence   TEXT NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	open_since INTEGER,
	-- 1 on the first finding of its rule in the scan: counting scans per
	-- rule is then a sum, not a COUNT(DISTINCT) over millions of rows.
	rule_first INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (scan_id, ord)
) WITHOUT ROWID;
