-- Bad input to the SQL functions: a clear ERROR with a HINT, or NULL.
\set VERBOSITY default
SELECT coder_health.statement_quantile(1, 1.5);
SELECT coder_health.statement_quantile(1, -0.01);
SELECT coder_health.statement_quantile(1, 'NaN');
SELECT coder_health.statement_quantile(NULL, 0.5) IS NULL AS null_queryid;
SELECT coder_health.statement_quantile(1, NULL) IS NULL AS null_q;
SELECT coder_health.statement_quantile(-1, 0.5) IS NULL AS unknown_queryid;
SELECT count(*) AS chart_rows FROM coder_health.latency_chart(-1);
SELECT count(*) AS chart_rows FROM coder_health.latency_chart(NULL);
SELECT coder_health.reset_statement(NULL);
SELECT coder_health.reset_statement(-1);
