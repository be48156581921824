-- pgaegis store, SQLite dialect: what each reached scan proves, in a form
-- that does not grow with findings. A scan's clean set is the rules it
-- decided and found nothing but pass for, with their titles; scans with
-- the same set share one row (content-addressed by digest), so auditor
-- evidence over a period intersects a few sets instead of grouping every
-- finding. Scans are immutable, so a set never changes once written;
-- the backfill of existing scans runs in Go in the same transaction.
CREATE TABLE clean_sets (
	id     INTEGER PRIMARY KEY,
	digest TEXT NOT NULL UNIQUE -- hex SHA-256 of the sorted (rule, titles) list
);
-- One row per rule and distinct title: evidence takes MAX(title) of the
-- findings, so every title is kept rather than a maximum by one collation.
CREATE TABLE clean_set_rules (
	set_id INTEGER NOT NULL REFERENCES clean_sets(id) ON DELETE CASCADE,
	rule   TEXT NOT NULL,
	title  TEXT NOT NULL,
	PRIMARY KEY (set_id, rule, title)
) WITHOUT ROWID;
-- NULL for scans that did not reach their server.
ALTER TABLE scans ADD COLUMN clean_set INTEGER REFERENCES clean_sets(id);
-- Fleet-wide periods read from the index alone.
CREATE INDEX scans_time_evidence ON scans (started_at, status, server_id, clean_set);
