#!/usr/bin/env python3
"""Generate the sql_exporter collector file from prometheus/queries.yaml.

prometheus/queries.yaml is written for postgres_exporter (--extend.query-path).
postgres_exporter has deprecated that flag in favour of sql_exporter
(github.com/burningalchemist/sql_exporter), which coder/observability uses.
This script turns the same queries into a sql_exporter collector that exposes
the same metric names with the same labels, so prometheus/alerts.yml and
grafana/ work with either exporter:

    python3 scripts/sql_exporter_collector.py            # (re)write the file
    python3 scripts/sql_exporter_collector.py --check    # exit 1 if it is stale
    python3 scripts/sql_exporter_collector.py --stdout   # print it

How postgres_exporter names things, and what the collector does the same way:
  * a query named Q with a GAUGE or COUNTER column C is the metric Q_C, a
    gauge or counter; its labels are the query's LABEL columns.  Here: one
    metric Q_C with key_labels = the LABEL columns, values = [C], all of a
    query's metrics reading one named query (query_ref), so a scrape runs
    each query once, as postgres_exporter does.
  * NULL: postgres_exporter reports a NULL value as NaN and a NULL label as
    "".  sql_exporter drops a NULL value (no series) and reports a NULL label
    as "", so each value is read as coalesce(C::float8, 'NaN').
  * a HISTOGRAM column H (with H_bucket, H_sum, H_count beside it; H holds
    the upper bounds le and H_bucket the cumulative counts, both arrays) is
    the histogram Q_H: series Q_H_bucket{le=...} (with le="+Inf" equal to
    H_count), Q_H_sum and Q_H_count.  sql_exporter has no histogram type, so
    these are three counters from one query that unnests the arrays, one row
    per bound; H_sum, H_count and the query's other values are set on the
    +Inf row only (sql_exporter skips NULLs), so every series comes once and
    from the same snapshot.  le is written as the Prometheus client writes it
    (shortest form; "+Inf"): test/tap/520_sql_exporter.pl compares the le
    values and all names and label names with a real postgres_exporter.
  * DISCARD columns and columns the file does not list are left out (for an
    unlisted column postgres_exporter would make an untyped metric: the test
    catches that difference).
Only PyYAML's safe_load is used to read; the output is written here, so it
does not depend on the PyYAML version.
"""

import argparse
import difflib
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("sql_exporter_collector.py: needs PyYAML (Debian: python3-yaml)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERIES = os.path.join(ROOT, "prometheus", "queries.yaml")
OUTPUT = os.path.join(ROOT, "prometheus", "sql_exporter", "coder_health.collector.yml")
COLLECTOR_NAME = "coder_health"

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# sql_exporter reserves these label names (job; target is its default
# --config.target-label); le is the bucket label of a histogram.
RESERVED_LABELS = {"job", "target", "le"}
QUERY_KEYS = {"query", "metrics", "master"}


class GenError(Exception):
    pass


def q(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def indent(text, n):
    pad = " " * n
    return "\n".join((pad + line) if line.strip() else "" for line in text.split("\n"))


def parse_query(name, spec):
    """Return (query text, labels, values, histogram) of one queries.yaml entry.

    values: list of (column, type, description); histogram: None or
    (column, description)."""
    if not METRIC_NAME.match(name):
        raise GenError(f"{name}: not a valid metric name prefix")
    unknown = set(spec) - QUERY_KEYS
    if unknown:
        raise GenError(f"{name}: keys {sorted(unknown)} have no sql_exporter equivalent here")
    text = spec.get("query")
    if not isinstance(text, str) or not text.strip():
        raise GenError(f"{name}: no query")
    text = text.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    labels, values, histogram = [], [], None
    seen = set()
    for entry in spec.get("metrics") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise GenError(f"{name}: a metrics entry must be a one-key map")
        (column, m), = entry.items()
        column = str(column)
        if column in seen:
            raise GenError(f"{name}: column {column} listed twice")
        seen.add(column)
        usage = str(m.get("usage", "")).upper()
        desc = str(m.get("description", "")).strip() or f"{name} {column}"
        if usage == "DISCARD":
            continue
        if usage == "LABEL":
            if not LABEL_NAME.match(column) or column in RESERVED_LABELS:
                raise GenError(f"{name}: {column} cannot be a label")
            labels.append(column)
        elif usage in ("GAUGE", "COUNTER"):
            if not METRIC_NAME.match(f"{name}_{column}"):
                raise GenError(f"{name}: {column} makes no valid metric name")
            values.append((column, usage.lower(), desc))
        elif usage == "HISTOGRAM":
            if histogram:
                raise GenError(f"{name}: only one HISTOGRAM column per query is supported")
            histogram = (column, desc)
        else:
            raise GenError(f"{name}: usage {usage or '(none)'} of {column} is not supported"
                           " (LABEL, GAUGE, COUNTER, HISTOGRAM, DISCARD)")
    if not values and not histogram:
        raise GenError(f"{name}: no metrics")
    return text, labels, values, histogram


def value_expr(column):
    return f"coalesce(q.{ident(column)}::float8, 'NaN')"


def collector_query(text, labels, values, histogram):
    cols = [f"q.{ident(l)}::text AS {ident(l)}" for l in labels]
    if histogram is None:
        cols += [f"{value_expr(c)} AS {ident(c)}" for c, _, _ in values]
        tail = ""
    else:
        h = histogram[0]
        last = "h.le = 'Infinity'"
        cols.append(f"CASE WHEN h.le = 'Infinity' THEN '+Inf' ELSE h.le::text END AS \"le\"")
        cols.append(f"h.bucket::float8 AS {ident(h + '_bucket')}")
        for c in (h + "_sum", h + "_count"):
            cols.append(f"CASE WHEN {last} THEN {value_expr(c)} END AS {ident(c)}")
        cols += [f"CASE WHEN {last} THEN {value_expr(c)} END AS {ident(c)}" for c, _, _ in values]
        tail = ("\nCROSS JOIN LATERAL unnest(q.{h} || 'Infinity'::float8,\n"
                "                          q.{b} || q.{n}) AS h(le, bucket)").format(
                    h=ident(h), b=ident(h + "_bucket"), n=ident(h + "_count"))
    return ("SELECT " + ",\n       ".join(cols) + "\nFROM (\n" + indent(text, 2)
            + "\n) AS q" + tail + "\n")


def generate(queries_path):
    with open(queries_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict) or not spec:
        raise GenError(f"{queries_path}: no queries")
    rel = os.path.relpath(queries_path, ROOT)
    out = [
        f"# GENERATED from {rel} by scripts/sql_exporter_collector.py: do not edit;",
        "# edit queries.yaml and run the script (test/tap/520_sql_exporter.pl fails when",
        "# this file is stale).",
        "#",
        "# A collector for sql_exporter (github.com/burningalchemist/sql_exporter) with",
        "# the metric names and labels postgres_exporter makes from queries.yaml, so",
        "# prometheus/alerts.yml and grafana/ work with either exporter.  Use it with",
        "# prometheus/sql_exporter/sql_exporter.yml (see README, \"Prometheus\").",
        "# The latency histogram comes as the series a histogram has: *_bucket{le},",
        "# *_sum and *_count (sql_exporter has no histogram type: they are counters).",
        f"collector_name: {COLLECTOR_NAME}",
        "",
        "metrics:",
    ]
    queries = []
    names = set()
    for name, qspec in spec.items():
        if not isinstance(qspec, dict):
            raise GenError(f"{name}: not a map")
        text, labels, values, histogram = parse_query(str(name), qspec)
        metrics = []
        if histogram:
            h, desc = histogram
            base = f"{name}_{h}"
            metrics.append((f"{base}_bucket", "counter", desc + " (cumulative count of observations <= le)",
                            labels + ["le"], f"{h}_bucket"))
            metrics.append((f"{base}_sum", "counter", desc + " (sum of observations)", labels, f"{h}_sum"))
            metrics.append((f"{base}_count", "counter", desc + " (count of observations)", labels, f"{h}_count"))
        for column, mtype, desc in values:
            metrics.append((f"{name}_{column}", mtype, desc, labels, column))
        for mname, mtype, desc, keys, column in metrics:
            if mname in names:
                raise GenError(f"metric {mname} would be defined twice")
            names.add(mname)
            out.append(f"  - metric_name: {mname}")
            out.append(f"    type: {mtype}")
            out.append(f"    help: {q(desc)}")
            if keys:
                out.append("    key_labels: [" + ", ".join(q(k) for k in keys) + "]")
            out.append(f"    values: [{q(column)}]")
            out.append(f"    query_ref: {name}")
        out.append("")
        queries.append((name, collector_query(text, labels, values, histogram)))
    out.append("queries:")
    for name, text in queries:
        out.append(f"  - query_name: {name}")
        out.append("    query: |")
        out.append(indent(text.rstrip("\n"), 6))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", default=QUERIES, help="postgres_exporter queries file")
    ap.add_argument("--output", default=OUTPUT, help="collector file to write or check")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 (with a diff) if --output differs from what the script generates")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = ap.parse_args()
    try:
        text = generate(args.queries)
    except (GenError, OSError, yaml.YAMLError) as e:
        sys.exit(f"sql_exporter_collector.py: {e}")
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                have = f.read()
        except OSError as e:
            print(f"sql_exporter_collector.py: {e}", file=sys.stderr)
            return 1
        if have == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            have.splitlines(True), text.splitlines(True),
            os.path.relpath(args.output, ROOT) + " (committed)", "generated from queries.yaml"))
        print(f"{os.path.relpath(args.output, ROOT)} is stale: run python3 scripts/sql_exporter_collector.py",
              file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
