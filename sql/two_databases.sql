-- The extension works in several databases of one server at once.
CREATE DATABASE coder_health_second;
\c coder_health_second
CREATE EXTENSION coder_health;
SELECT extension_version = library_version AS ok FROM coder_health.status;
SELECT pg_sleep(0.01);
SELECT coder_health.flush();
-- this database's statements are attributed to it
SELECT count(*) > 0 AS has_own_statements
FROM coder_health.statement_latency WHERE datname = 'coder_health_second';
\c contrib_regression
-- and are visible from the other database too (one server-wide table)
SELECT count(*) > 0 AS sees_second_database
FROM coder_health.statement_latency WHERE datname = 'coder_health_second';
DROP DATABASE coder_health_second;
