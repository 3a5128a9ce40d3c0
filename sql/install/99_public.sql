-- ---------------------------------------------------------------------------
-- Last: nothing in coder_health is for PUBLIC.  Each fragment granted its own
-- read objects to pg_monitor; reset functions stay superuser-only.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA coder_health FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA coder_health FROM PUBLIC;
