-- ---------------------------------------------------------------------------
-- The verdict first: one screen (80 columns, 24 rows) that answers "is
-- Coder's database healthy, and if not, what and who"
-- ---------------------------------------------------------------------------

-- prefix || body cut at spaces into lines of at most width characters,
-- the lines after the first indented by indent; at most max_lines lines
-- (the last one ends with "..." when the text goes on).
CREATE FUNCTION coder_health.summary_wrap(prefix text, body text, indent text,
                                         width integer, max_lines integer)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lines text[] := '{}';
    rest text := regexp_replace(coalesce(body, ''), '\s+', ' ', 'g');
    lead text := coalesce(prefix, '');
    room integer;
    cut integer;
BEGIN
    LOOP
        room := width - length(lead);
        IF length(rest) <= room THEN
            lines := lines || (lead || rest);
            EXIT;
        END IF;
        IF coalesce(array_length(lines, 1), 0) + 1 >= max_lines THEN
            lines := lines || (lead || left(rest, room - 3) || '...');
            EXIT;
        END IF;
        -- the last space that leaves the line within width
        cut := room + 1 - coalesce(nullif(strpos(reverse(left(rest, room + 1)), ' '), 0), room + 2);
        IF cut <= 0 THEN
            cut := room;        -- one word longer than a line: cut it
        END IF;
        lines := lines || (lead || rtrim(left(rest, cut)));
        rest := ltrim(substr(rest, cut + 1));
        lead := indent;
    END LOOP;
    RETURN lines;
END
$$;

COMMENT ON FUNCTION coder_health.summary_wrap(text, text, text, integer, integer) IS
  'prefix || body cut at spaces into at most max_lines lines of at most width characters (coder_health.summary)';

-- The lines of the summary, rendered from the rows of the views it reads,
-- given as JSON (one object per row, keys are the views' column names), so
-- that a test can render a known state: checks (health), queries
-- (query_latency, Coder's database, last 5 minutes), servers
-- (coder_servers), queue (notify_queue, one object), replication.  At most
-- 22 lines of at most 78 characters: with psql's header, one 80 x 24 screen.
CREATE FUNCTION coder_health.summary_render(checks jsonb, queries jsonb,
                                           servers jsonb, queue jsonb,
                                           replication jsonb, datname text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width constant integer := 78;
    max_lines constant integer := 22;
    failing text[] := '{}';
    tail text[] := '{}';
    lines text[];
    c jsonb;
    n_crit integer := 0;
    n_warn integer := 0;
    n_ok integer := 0;
    n_unknown integer := 0;
    unknowns text[] := '{}';
    verdict text;
    verdict_lines integer;
    room integer;
    nfail integer;
    nshown integer := 0;
    others integer := 0;
    stopped integer := 0;
    servers_at integer;
    n integer;
    usage_pct float8;
    flags text;
    ms constant text := 'FM999999990.000';
    -- a p99 over a few calls is just the slowest call: the same minimum
    -- volume as the health checks (coder_health.health_min_statements)
    ulist text;
    more text;
    stopped_names text[] := '{}';
    detail text;
    rest text;
    m text;
    p integer;
    min_calls constant bigint := coalesce(
        nullif(current_setting('coder_health.health_min_statements', true), '')::bigint, 100);
BEGIN
    -- the verdict: the worst status, and how many checks have each
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(checks, '[]')) e LOOP
        CASE c->>'status'
            WHEN 'critical' THEN n_crit := n_crit + 1;
            WHEN 'warn' THEN n_warn := n_warn + 1;
            WHEN 'ok' THEN n_ok := n_ok + 1;
            ELSE n_unknown := n_unknown + 1;
                 unknowns := unknowns || coalesce(c->>'check_name', c->>'check');
        END CASE;
    END LOOP;
    verdict := CASE WHEN n_crit > 0 THEN 'CRITICAL' WHEN n_warn > 0 THEN 'WARNING'
                    WHEN n_ok > 0 THEN 'HEALTHY' ELSE 'UNKNOWN' END;
    -- the verdict line(s) are returned first, before anything else is built
    lines := coder_health.summary_wrap(
        verdict || '  database ' || datname || ': ',
        array_to_string(ARRAY[
            CASE WHEN n_crit > 0 THEN n_crit || ' critical' END,
            CASE WHEN n_warn > 0 THEN n_warn || ' warn' END,
            CASE WHEN n_unknown > 0 THEN n_unknown || ' unknown' END,
            n_ok || ' ok'], ', ') || ' (' || (n_crit + n_warn + n_ok + n_unknown) || ' checks)',
        '  ', width, 2);
    verdict_lines := array_length(lines, 1);
    RETURN QUERY SELECT unnest(lines);

    -- what follows the failing checks, built first so that they get the room
    -- that is left: the slowest Coder queries
    tail := tail || format('Slowest Coder queries with %s calls or more, p99 over the last 5 min:',
                           min_calls);
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(queries, '[]')) e
             WHERE e->>'query_name' IS NOT NULL
               -- a few calls of a rare query do not make it the slowest
               AND (e->>'recent_calls')::bigint >= greatest(min_calls, 1)
             ORDER BY (e->>'recent_p99_ms')::float8 DESC NULLS LAST, e->>'query_name'
             LIMIT 3 LOOP
        tail := tail || format('  %-36s %11s ms %8s calls %5s err',
                               left(c->>'query_name', 36),
                               to_char((c->>'recent_p99_ms')::numeric, ms),
                               c->>'recent_calls', c->>'recent_errors');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        tail := tail || '  none: no statement with an sqlc name and that many calls'::text;
    END IF;

    -- the Coder Servers (clients over TCP that are not unknown hosts)
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(servers, '[]')) e
             ORDER BY e->>'coder_server' LOOP
        -- kind (coder_servers): a replicas row or sqlc-named statements make
        -- a Coder Server; without it, any TCP client not flagged unknown
        IF (CASE WHEN c ? 'kind' THEN c->>'kind' IS DISTINCT FROM 'coder_server'
                 ELSE c->>'client_addr' = 'local' OR (c->>'unknown')::boolean IS TRUE END) THEN
            others := others + 1;
            CONTINUE;
        END IF;
        IF (c->>'stopped')::boolean IS TRUE
           OR (coalesce((c->>'connections')::integer, 0) = 0
               AND (c->>'missing')::boolean IS NOT TRUE AND (c->>'stale')::boolean IS NOT TRUE) THEN
            stopped := stopped + 1;
            stopped_names := stopped_names || (c->>'coder_server');
            CONTINUE;
        END IF;
        n := n + 1;
        IF n > 4 THEN
            CONTINUE;
        END IF;
        flags := concat_ws(' ',
                     CASE WHEN (c->>'far')::boolean THEN 'FAR' END,
                     CASE WHEN (c->>'stale')::boolean THEN 'STALE' END,
                     CASE WHEN (c->>'missing')::boolean THEN 'MISSING' END,
                     CASE WHEN (c->>'listen_lost')::boolean THEN 'NO-LISTEN' END);
        IF n = 1 THEN
            tail := tail || 'Coder Servers:'::text;
            servers_at := coalesce(array_length(tail, 1), 0);
        END IF;
        tail := tail || coder_health.summary_wrap(
            format('  %-10s ', c->>'coder_server') || coalesce(nullif(flags, '') || ': ', ''),
            CASE WHEN coalesce((c->>'connections')::integer, 0) = 0 THEN 'not connected'
                 ELSE format('%s conns (%s active), rtt %s ms, p99 %s ms',
                             c->>'connections', c->>'active',
                             coalesce(to_char((c->>'rtt_ms')::numeric, ms), '?'),
                             coalesce(to_char((c->>'p99_ms')::numeric, ms), '?')) END,
            '    ', width, 2);
    END LOOP;
    IF n > 0 AND (others > 0 OR stopped > 0) THEN
        tail[servers_at] := 'Coder Servers (' || concat_ws(', ',
            CASE WHEN stopped > 0 THEN stopped || ' stopped or gone' END,
            CASE WHEN others > 0 THEN others || ' other clients' END) || ' not shown):';
    END IF;
    IF n = 0 THEN
        -- every Coder Server stopped: say so, by name (at most 4)
        tail := tail || coder_health.summary_wrap('Coder Servers: ', 'none connected'
            || CASE WHEN stopped > 0
                    THEN '; ' || stopped || ' stopped or gone: '
                         || array_to_string(stopped_names[1:4], ', ')
                         || CASE WHEN stopped > 4 THEN ', +' || (stopped - 4) || ' more' ELSE '' END
                    ELSE '' END
            || CASE WHEN others > 0 THEN ' (' || others || ' other clients)' ELSE '' END,
            '  ', width, 2);
    ELSIF n > 4 THEN
        tail := tail || format('  ... and %s more Coder Servers: SELECT * FROM coder_health.coder_servers', n - 4);
    END IF;

    -- the NOTIFY queue
    IF queue IS NULL THEN
        tail := tail || 'NOTIFY queue: not read'::text;
    ELSE
        usage_pct := coalesce((queue->>'usage_pct')::float8, (queue->>'usage')::float8 * 100);
        tail := tail || coder_health.summary_wrap('NOTIFY queue: ',
            format('%s %% used (%s), %s notifications/s, %s listeners%s',
                   to_char(usage_pct, 'FM990.000'),
                   pg_size_pretty((queue->>'backlog_bytes')::bigint),
                   to_char(coalesce((queue->>'notifications_per_s')::numeric, 0), 'FM999999990.0'),
                   coalesce(queue->>'listeners', '0'),
                   CASE WHEN coalesce((queue->>'stalled_listeners')::integer, 0) > 0
                        THEN format(', %s stalled (slowest: pid %s, %s behind)',
                                    queue->>'stalled_listeners', coalesce(queue->>'slowest_listener_pid', '?'),
                                    coalesce(pg_size_pretty((queue->>'slowest_listener_backlog_bytes')::bigint), '?'))
                        ELSE ', none stalled' END),
            '  ', width, 2);
    END IF;

    -- the standby: each WAL sender (primary), or this server's receiver
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(replication, '[]')) e
             ORDER BY e->>'role', e->>'application_name' LOOP
        n := n + 1;
        IF n > 2 THEN
            CONTINUE;
        END IF;
        IF c->>'role' = 'standby' THEN
            tail := tail || coder_health.summary_wrap('This server is a standby: ',
                format('receiver %s from %s, replay %s s behind',
                       coalesce(c->>'receiver_status', 'not running'),
                       coalesce(c->>'sender_host', '?'),
                       coalesce(to_char((c->>'replay_delay_s')::numeric, ms), '?')),
                '  ', width, 2);
        ELSE
            tail := tail || coder_health.summary_wrap(
                format('Standby %s (%s): ',
                       coalesce(c->>'application_name', c->>'slot_name', 'pid ' || (c->>'pid')),
                       coalesce(c->>'client_addr', 'local')),
                format('%s, lag %s / %s s%s',
                       coalesce(c->>'state', '?'),
                       pg_size_pretty((c->>'replay_lag_bytes')::bigint),
                       coalesce(to_char((c->>'replay_lag_s')::numeric, ms), '?'),
                       coalesce(', rtt ' || to_char((c->>'rtt_ms')::numeric, ms) || ' ms', '')),
                '  ', width, 2);
        END IF;
    END LOOP;
    IF n = 0 THEN
        tail := tail || 'Standby: none connected'::text;
    ELSIF n > 2 THEN
        tail := tail || format('  ... and %s more: SELECT * FROM coder_health.replication', n - 2);
    END IF;

    -- each failing check with its culprit (the check's detail), worst
    -- first, in the room the rest leaves; then the checks without data
    room := max_lines - verdict_lines - coalesce(array_length(tail, 1), 0)
            - CASE WHEN n_unknown > 0 THEN 1 ELSE 0 END;
    nfail := n_crit + n_warn;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(checks, '[]')) WITH ORDINALITY AS x(e, i)
             WHERE e->>'status' IN ('critical', 'warn')
             ORDER BY e->>'status' = 'critical' DESC, i LOOP
        -- one unit per quantity on this screen: the details' "N bytes"
        -- as pg_size_pretty, like the NOTIFY and standby lines
        detail := '';
        rest := c->>'detail';
        LOOP
            m := substring(rest from '[0-9]+ bytes');
            EXIT WHEN m IS NULL;
            p := strpos(rest, m);
            detail := detail || left(rest, p - 1) || pg_size_pretty(split_part(m, ' ', 1)::numeric);
            rest := substr(rest, p + length(m));
        END LOOP;
        detail := detail || rest;
        lines := coder_health.summary_wrap(
                     rpad(c->>'status', 9) || coalesce(c->>'check_name', c->>'check') || ': ',
                     detail, '         ', width,
                     -- keep one line for "... and N more" when some will not fit
                     least(3, room - coalesce(array_length(failing, 1), 0)
                              - CASE WHEN nshown + 1 < nfail THEN 1 ELSE 0 END));
        EXIT WHEN coalesce(array_length(lines, 1), 0) = 0
             OR coalesce(array_length(failing, 1), 0) + array_length(lines, 1)
                + CASE WHEN nshown + 1 < nfail THEN 1 ELSE 0 END > room;
        failing := failing || lines;
        nshown := nshown + 1;
    END LOOP;
    IF nshown < nfail THEN
        failing := failing || format('... and %s more failing checks: SELECT * FROM coder_health.health',
                                     nfail - nshown);
    END IF;
    IF n_unknown > 0 THEN
        -- whole names only: those that fit, then "+N more" for the rest
        ulist := 'unknown  (no data): ';
        FOR i IN 1 .. n_unknown LOOP
            more := CASE WHEN i < n_unknown THEN format(', +%s more', n_unknown - i) ELSE '' END;
            IF length(ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END || unknowns[i] || more) > width THEN
                ulist := ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END
                         || format('+%s more', n_unknown - i + 1);
                EXIT;
            END IF;
            ulist := ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END || unknowns[i];
        END LOOP;
        failing := failing || ulist;
    END IF;

    RETURN QUERY SELECT unnest(failing || tail);
END
$$;

COMMENT ON FUNCTION coder_health.summary_render(jsonb, jsonb, jsonb, jsonb, jsonb, text) IS
  'The lines of coder_health.summary from given rows of health, query_latency, coder_servers, notify_queue and replication (as JSON)';

CREATE VIEW coder_health.summary AS
SELECT s.line AS summary
FROM coder_health.summary_render(
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h)) FROM coder_health.health h),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(q)) FROM coder_health.query_latency q
          WHERE q.datname = pg_catalog.current_database() AND q.recent_calls > 0),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c)) FROM coder_health.coder_servers c),
         (SELECT pg_catalog.to_jsonb(n) FROM coder_health.notify_queue n),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)) FROM coder_health.replication r),
         pg_catalog.current_database()) WITH ORDINALITY AS s(line, n)
ORDER BY s.n;

COMMENT ON VIEW coder_health.summary IS
  'One screen (at most 22 lines of 78 characters): the verdict, each failing check with its culprit, the slowest Coder queries by sqlc name, the Coder Servers, the NOTIFY queue and the standby';

GRANT EXECUTE ON FUNCTION coder_health.summary_wrap(text, text, text, integer, integer),
                          coder_health.summary_render(jsonb, jsonb, jsonb, jsonb, jsonb, text)
    TO pg_monitor;
GRANT SELECT ON coder_health.summary TO pg_monitor;
