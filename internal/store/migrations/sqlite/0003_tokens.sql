-- pgaegis store, SQLite dialect: API and dashboard tokens for `pgaegis serve`.
-- Only the SHA-256 of a token is kept: the token itself is printed once,
-- when created, and a stolen store file does not log anyone in.
CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	role         TEXT NOT NULL CHECK (role IN ('read-only', 'operator')),
	hash         TEXT NOT NULL UNIQUE, -- hex SHA-256 of the token
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at   INTEGER
);

