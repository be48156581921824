-- pgaegis store, PostgreSQL dialect: the queue job a scan was made for.
-- A worker that dies after writing but before the queue marks the job
-- done runs it again; the unique key turns the second write into a no-op.
-- NULL (scans not made by a queue job) never collides.
ALTER TABLE scans ADD COLUMN job_key text;
CREATE UNIQUE INDEX scans_job_key ON scans (job_key);
