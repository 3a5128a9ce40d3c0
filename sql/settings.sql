-- Every coder_health setting is visible, typed and range-checked (the core
-- and latency ones here; each feature's tests check its own).
-- PostgreSQL's messages differ by version: settings_1.out is 13 and 14 (no
-- reserved prefix: a misspelt name is a placeholder), settings_2.out 18+
-- (ranges shown with units).
SELECT name, unit, boot_val, min_val, max_val, context
FROM coder_health.settings
WHERE name IN ('coder_health.sample_interval', 'coder_health.track',
               'coder_health.track_utility', 'coder_health.include_errors',
               'coder_health.max_statements', 'coder_health.max_clients',
               'coder_health.window_step', 'coder_health.export_top_statements',
               'coder_health.export_top_queries', 'coder_health.query_names')
ORDER BY name;

-- pg_settings' column names; a *_bytes setting in bytes (PostgreSQL keeps
-- it in kB), unit B
SELECT name, setting, unit, boot_val, min_val, max_val FROM coder_health.settings
WHERE name LIKE '%\_bytes' ORDER BY name;

-- bad values are rejected with PostgreSQL's own messages
SET coder_health.track = 'everything';
SET coder_health.max_statements = 10;
SET coder_health.sample_interval = 1000;
ALTER SYSTEM SET coder_health.sample_interval = 5;
ALTER SYSTEM SET coder_health.window_step = '2h';
ALTER SYSTEM SET coder_health.max_statements = 99;
-- a misspelt name in the reserved prefix is refused
SET coder_health.sampel_interval = 100;
-- good values are taken
SET coder_health.track = 'all';
SHOW coder_health.track;
RESET coder_health.track;
SHOW coder_health.track;
