-- pgaegis store, PostgreSQL dialect, version 1. Tables live in the
-- schema "pgaegis" (the connection's search_path).
CREATE TABLE servers (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       text NOT NULL UNIQUE,
	labels     text NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL
);

CREATE TABLE scans (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	server_id      bigint NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
	labels         text NOT NULL DEFAULT '{}',
	started_at     timestamptz NOT NULL,
	finished_at    timestamptz NOT NULL,
	status         text NOT NULL CHECK (status IN ('ok', 'unreachable', 'timeout', 'error')),
	message        text NOT NULL DEFAULT '',
	tool_version   text NOT NULL DEFAULT '',
	server_version text NOT NULL DEFAULT '',
	fail_critical  integer NOT NULL DEFAULT 0,
	fail_high      integer NOT NULL DEFAULT 0,
	fail_medium    integer NOT NULL DEFAULT 0,
	fail_low       integer NOT NULL DEFAULT 0,
	fail_info      integer NOT NULL DEFAULT 0,
	pass           integer NOT NULL DEFAULT 0,
	not_checked    integer NOT NULL DEFAULT 0,
	waived         integer NOT NULL DEFAULT 0,
	snapshot       bytea,
	findings       bytea
);
CREATE INDEX scans_server_time ON scans (server_id, started_at, id);
-- Latest reached scan of each server.
CREATE INDEX scans_server_status_time ON scans (server_id, status, started_at, id);
CREATE INDEX scans_time ON scans (started_at);

CREATE TABLE findings (
	scan_id    bigint NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
	ord        integer NOT NULL,
	server_id  bigint NOT NULL,
	rule       text NOT NULL,
	status     text NOT NULL,
	severity   smallint NOT NULL,
	area       text NOT NULL DEFAULT '',
	title      text NOT NULL DEFAULT '',
	object     text NOT NULL DEFAULT '',
	location   text NOT NULL DEFAULT '',
	evidence   text NOT NULL DEFAULT '',
	started_at timestamptz NOT NULL,
	open_since timestamptz,
	-- 1 on the first finding of its rule in the scan: counting scans per
	-- rule is then a sum, not a COUNT(DISTINCT) over millions of rows.
	rule_first smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (scan_id, ord)
);
