-- pgaegis store, PostgreSQL dialect: API and dashboard tokens for
-- `pgaegis serve`. Only the SHA-256 of a token is kept: the token itself is
-- printed once, when created, and a copy of the database logs no one in.
CREATE TABLE tokens (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name         text NOT NULL UNIQUE,
	role         text NOT NULL CHECK (role IN ('read-only', 'operator')),
	hash         text NOT NULL UNIQUE, -- hex SHA-256 of the token
	created_at   timestamptz NOT NULL,
	last_used_at timestamptz,
	revoked_at   timestamptz
);
