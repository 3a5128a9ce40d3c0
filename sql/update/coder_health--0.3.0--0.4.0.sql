-- coder_health 0.3.0 -> 0.4.0 (ALTER EXTENSION coder_health UPDATE)
--
-- What changed in the SQL objects, each with its reason (docs/versions.md).
\echo Use "ALTER EXTENSION coder_health UPDATE TO '0.4.0'" to load this file. \quit
