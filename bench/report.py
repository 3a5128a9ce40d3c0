#!/usr/bin/env python3
"""Tables for bench/run.sh: turns the raw measurements of one section into
the printed table and one summary line (written to --summary FILE).

  report.py instructions RAW.tsv --summary F
  report.py backend      RAW.tsv --lo N --hi N --summary F
  report.py throughput   RAW.tsv --summary F
  report.py accuracy     SERVER.log CODER_HEALTH.tsv --user ROLE --summary F
  report.py median       < numbers        (prints the median)

Only the standard library is used.
"""
import argparse
import math
import re
import statistics
import sys
from collections import defaultdict

def cfg_libs(cfg):
    return {"ch": ["ch"], "both": ["ch", "pgss"], "pgss": ["pgss"]}.get(cfg, [])


CONFIG_LABEL = {
    "none": "none",
    "queryid": "none + compute_query_id=on",
    "pgss": "pg_stat_statements",
    "ch": "coder_health",
    "both": "both",
}


def fmt_ratio(x):
    return "n/a" if x is None or math.isnan(x) else f"{x:.3f}"


def write_summary(path, line):
    if path:
        with open(path, "w") as f:
            f.write(line.rstrip("\n") + "\n")


# ---------------------------------------------------------------------------
# instructions: rows "config  n  Ir  ch_calls  pgss_calls"
# ---------------------------------------------------------------------------
def instructions(args):
    ir = {}
    own = {}
    seen = {}
    order = []
    with open(args.raw) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            cfg, n, total, chc, pgc = parts[:5]
            chd = parts[5] if len(parts) > 5 else ""
            if len(parts) > 6 and parts[6]:
                own[(cfg, int(n))] = int(parts[6])
            if cfg not in order:
                order.append(cfg)
            if total:
                ir[(cfg, int(n))] = int(total)
            seen[(cfg, int(n))] = (chc, pgc, chd)
    sizes = sorted({n for (_, n) in ir})
    if len(sizes) < 2:
        print("not enough runs to compute a slope")
        write_summary(args.summary, "instructions/stmt added: n/a (runs failed)")
        return
    lo, hi = sizes[0], sizes[-1]
    per = {}
    for cfg in order:
        if (cfg, lo) in ir and (cfg, hi) in ir:
            per[cfg] = (ir[(cfg, hi)] - ir[(cfg, lo)]) / (hi - lo)
    base = per.get("none")
    problems = []
    print(f"instructions per statement = (Ir({hi}) - Ir({lo})) / {hi - lo}, "
          "valgrind --tool=callgrind on postgres --single")
    print()
    hdr = f"  {'config':<28} {'Ir(' + str(lo) + ')':>15} {'Ir(' + str(hi) + ')':>15} " \
          f"{'instr/stmt':>11} {'added':>9} {'own':>5}  sanity: calls seen (of {lo} / {hi})"
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for cfg in order:
        if cfg not in per:
            print(f"  {CONFIG_LABEL.get(cfg, cfg):<28} failed")
            continue
        added = "" if base is None else f"{per[cfg] - base:+9.0f}"
        checks = []
        for label, idx in (("coder_health", 0), ("pgss", 1)):
            vals = [seen.get((cfg, n), ("", "", ""))[idx] for n in (lo, hi)]
            drops = [seen.get((cfg, n), ("", "", ""))[2] for n in (lo, hi)]
            if idx == 0 and "ch" in cfg_libs(cfg):
                checks.append(f"{label} {vals[0] or '?'} / {vals[1] or '?'}"
                              + (f" (dropped {drops[0] or '?'} / {drops[1] or '?'})"
                                 if any(d not in ("", "0") for d in drops) else ""))
                for n, v, d in zip((lo, hi), vals, drops):
                    if not v or int(v) + 256 < n or d not in ("", "0"):
                        problems.append(f"{CONFIG_LABEL.get(cfg, cfg)}, {n} statements: coder_health "
                                        f"recorded {v or 'nothing'}, dropped {d or '?'}")
            elif any(vals):
                checks.append(f"{label} {vals[0] or '?'} / {vals[1] or '?'}")
        mine = ""
        if (cfg, lo) in own and (cfg, hi) in own:
            mine = f"{(own[(cfg, hi)] - own[(cfg, lo)]) / (hi - lo):.0f}"
        print(f"  {CONFIG_LABEL.get(cfg, cfg):<28} {ir[(cfg, lo)]:>15,} {ir[(cfg, hi)]:>15,} "
              f"{per[cfg]:>11.0f} {added:>9} {mine:>5}  {', '.join(checks)}")
    print()
    print("  own: instructions per statement in coder_health's own code (its .so's")
    print("  functions and its headers' inline ones), the steady part of \"added\"")
    print()
    for p in problems:
        print(f"  WARNING: {p}")
    if problems:
        print("  (coder_health did not record every statement: its figure leaves that work out)")
        print()
    ch = per.get("ch")
    pg = per.get("pgss")
    if base is not None and ch is not None:
        ch_added = ch - base
        line = f"instructions/stmt added: coder_health {ch_added:.0f}"
        if pg is not None:
            pg_added = pg - base
            ratio = ch_added / pg_added if pg_added > 0 else float("nan")
            print(f"  coder_health added {ch_added:.0f} instr/stmt, pg_stat_statements added "
                  f"{pg_added:.0f}: ratio {fmt_ratio(ratio)} (target < 0.25)")
            line += f", pg_stat_statements {pg_added:.0f}, ratio X/Y = {fmt_ratio(ratio)} (target < 0.25)"
        if "queryid" in per:
            qid = per["queryid"] - base
            print(f"  PostgreSQL's own query ids (compute_query_id=on alone): {qid:.0f} instr/stmt, "
                  "which pg_stat_statements turns on; coder_health gives statements ids from "
                  "their text instead unless something else turns them on")
            line += f"; PostgreSQL's query ids alone {qid:.0f} (pg_stat_statements turns them on)"
            if "both" in per and pg is not None:
                extra = per["both"] - pg
                print(f"  coder_health next to pg_stat_statements (core ids already computed): "
                      f"{extra:+.0f} instr/stmt")
                line += f"; coder_health next to pg_stat_statements {extra:+.0f}"
        if "both" in per and pg is not None:
            print(f"  both together added {per['both'] - base:.0f} instr/stmt")
        if problems:
            line += ("\n    WARNING: coder_health did not record every statement "
                     "(see the section): this figure is too low")
        write_summary(args.summary, line)
    else:
        write_summary(args.summary, "instructions/stmt added: n/a (runs failed)")


# ---------------------------------------------------------------------------
# throughput: rows "round  config  workload  clients  tps"
# ---------------------------------------------------------------------------
def paired_ratios(by_round, wl, c, cfg, invert=False):
    """Per round: value(config) / value(none) (or the inverse), sorted."""
    out = []
    for (w2, c2, _), d in by_round.items():
        if w2 == wl and c2 == c and cfg in d and d.get("none", 0) > 0 and d[cfg] > 0:
            out.append(d["none"] / d[cfg] if invert else d[cfg] / d["none"])
    return sorted(out)


def throughput(args):
    data = defaultdict(list)            # (wl, c, cfg) -> [tps]
    cpu = defaultdict(list)             # (wl, c, cfg) -> [server CPU us per transaction]
    by_round = defaultdict(dict)        # (wl, c, round) -> {cfg: tps}
    cpu_round = defaultdict(dict)       # (wl, c, round) -> {cfg: us per transaction}
    coverage = defaultdict(list)        # (wl, c, cfg) -> [recorded statements / transactions]
    workloads, clients, configs, rounds = [], [], [], set()
    with open(args.raw) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            rnd, cfg, wl, c, tps = parts[:5]
            c = int(c)
            rounds.add(rnd)
            for lst, v in ((workloads, wl), (clients, c), (configs, cfg)):
                if v not in lst:
                    lst.append(v)
            try:
                t = float(tps)
            except ValueError:
                continue
            if math.isnan(t):
                continue
            data[(wl, c, cfg)].append(t)
            by_round[(wl, c, rnd)][cfg] = t
            if len(parts) >= 8 and parts[7]:
                try:
                    if float(parts[6]) > 0:
                        coverage[(wl, c, cfg)].append(float(parts[7]) / float(parts[6]))
                except ValueError:
                    pass
            if len(parts) >= 7:
                try:
                    ticks, tx = float(parts[5]), float(parts[6])
                except ValueError:
                    continue
                if tx > 0 and ticks > 0:
                    us = ticks * 1e6 / args.clk_tck / tx
                    cpu[(wl, c, cfg)].append(us)
                    cpu_round[(wl, c, rnd)][cfg] = us
    clients.sort()
    order = [c for c in ("none", "pgss", "ch", "both") if c in configs]
    others = [c for c in order if c != "none"]
    label = {"none": "none", "pgss": "pg_stat_stmts", "ch": "coder_health", "both": "both"}

    def table(title, values, fmt, unit):
        print(title)
        print()
        head = f"  {'workload':<16} {'clients':>7}" + "".join(
            f" {label[c] + ' ' + unit:>19} {'spread':>6}" for c in order)
        print(head)
        print("  " + "-" * (len(head) - 2))
        for wl in workloads:
            for c in clients:
                row = f"  {wl:<16} {c:>7}"
                for cfg in order:
                    v = values.get((wl, c, cfg))
                    if v:
                        row += f" {fmt(statistics.median(v)):>19} {(max(v) / min(v) - 1) * 100:>5.0f}%"
                    else:
                        row += f" {'n/a':>19} {'':>6}"
                print(row)
        print()

    def ratios(title, rounds_data, invert):
        print(title)
        print()
        head = f"  {'workload':<16} {'clients':>7}" + "".join(
            f" | {label[c] + ' [lowest .. highest]':>34}" for c in others)
        print(head)
        print("  " + "-" * (len(head) - 2))
        res = {}
        for wl in workloads:
            for c in clients:
                row = f"  {wl:<16} {c:>7}"
                for cfg in others:
                    pr = paired_ratios(rounds_data, wl, c, cfg, invert)
                    if not pr:
                        row += f" | {'n/a':>34}"
                        continue
                    res[(wl, c, cfg)] = statistics.median(pr)
                    row += f" | {res[(wl, c, cfg)]:>14.3f} [{pr[0]:.3f} .. {pr[-1]:.3f}]"
                print(row)
        print()
        return res

    table(f"median tps over {len(rounds)} rounds (spread = max/min - 1 over that configuration's rounds)",
          data, lambda x: f"{x:.0f}", "tps")
    paired = ratios("tps ratio to none: median over rounds of tps(config) / tps(none) in the same round",
                    by_round, False)
    cpaired = {}
    if cpu:
        table("server CPU per transaction in microseconds (median over rounds)",
              cpu, lambda x: f"{x:.1f}", "us/tx")
        cpaired = ratios("CPU efficiency vs none: median over rounds of cpu/tx(none) / cpu/tx(config)\n"
                         "(the throughput ratio a CPU-bound server would see)", cpu_round, True)

    low_cov = []
    if coverage:
        print("coder_health coverage: statements it recorded / transactions pgbench ran "
              "(one statement each; lowest and median over rounds)")
        print()
        for key in sorted(coverage):
            v = sorted(coverage[key])
            wl, c, cfg = key
            flag = ""
            if v[0] < 0.99:
                flag = "   <-- statements missing: coder_health skipped work"
                low_cov.append(f"{label[cfg]} {wl} {c} clients {v[0]:.3f}")
            print(f"  {wl:<16} {c:>3} clients {label[cfg]:<14} lowest {v[0]:.4f}  "
                  f"median {statistics.median(v):.4f}{flag}")
        print()

    lines = []
    for wl in workloads:
        for c in clients:
            if (wl, c, "ch") not in paired:
                continue
            s = f"{wl}, {c} clients: coder_health {paired[(wl, c, 'ch')]:.3f}"
            if (wl, c, "pgss") in paired:
                s += f", pgss {paired[(wl, c, 'pgss')]:.3f}"
            if (wl, c, "both") in paired:
                s += f", both {paired[(wl, c, 'both')]:.3f}"
            if (wl, c, "ch") in cpaired:
                s += f"  | CPU: coder_health {cpaired[(wl, c, 'ch')]:.3f}"
                if (wl, c, "pgss") in cpaired:
                    s += f", pgss {cpaired[(wl, c, 'pgss')]:.3f}"
            lines.append(s)
    if low_cov:
        lines.append("WARNING: coder_health recorded too few statements (" + "; ".join(low_cov[:3])
                     + (" ..." if len(low_cov) > 3 else "") + "): it skipped work, its ratios are too good")
    if lines:
        write_summary(args.summary, "throughput ratio vs none (paired medians, tps | server CPU per tx;"
                      " target coder_health >= 0.98):\n" + "\n".join("    " + s for s in lines))
    else:
        write_summary(args.summary, "throughput ratio vs none: n/a (runs failed)")


# ---------------------------------------------------------------------------
# accuracy: the server log against coder_health.statement_latency
# ---------------------------------------------------------------------------
QS = [("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999)]
MIN_CALLS = 100     # fewer: the sketch is clamped to min/max, nothing to test
CLEAN_OFFSET = 0.005  # statements long enough for the end-point offset not to matter
CH_COLS = ["queryid", "calls", "errors", "total_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms",
           "p99_ms", "p999_ms", "max_ms"]


def lower_nearest_rank(sorted_vals, q):
    """Same definition as the sketch: rank ceil(q*n), clamped to 1..n."""
    n = len(sorted_vals)
    r = math.ceil(q * n)
    r = min(max(r, 1), n)
    return sorted_vals[r - 1]


class Worst:
    def __init__(self):
        self.val, self.where = 0.0, None

    def see(self, val, where):
        if abs(val) > abs(self.val) or self.where is None:
            self.val, self.where = val, where

    def pct(self):
        return f"{self.val * 100:.2f}% ({self.where})" if self.where else "n/a"


def accuracy(args):
    # "... [pid] user queryid LOG:  duration: 1.234 ms  statement: ..."
    pat = re.compile(r"\[(\d+)\] (\S*) (-?\d+) LOG:  duration: ([0-9.]+) ms  statement: (.*)$")
    durs = defaultdict(list)
    text = {}
    other = 0
    with open(args.log, errors="replace") as f:
        for line in f:
            m = pat.search(line)
            if not m:
                if "duration:" in line:
                    other += 1
                continue
            if args.user and m.group(2) != args.user:
                continue
            qid = int(m.group(3))
            durs[qid].append(float(m.group(4)))
            text.setdefault(qid, m.group(5).strip())
    ch = {}
    with open(args.ch) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(CH_COLS):
                continue
            row = dict(zip(CH_COLS, parts))
            ch[int(row["queryid"])] = row
    if not durs:
        print("no duration lines found in the server log")
        write_summary(args.summary, "accuracy: n/a (no duration lines in the log)")
        return
    if 0 in durs:
        print(f"  note: {len(durs[0])} log lines carry query id 0 (not comparable)")
        del durs[0]
    w_raw, w_raw_ge1, w_shift, w_clean = Worst(), Worst(), Worst(), Worst()
    w_minmax_us = Worst()
    offsets = []
    nq = nqid = nclean = 0
    calls_mismatch = []
    print("per query id: exact (from the log's duration lines) vs coder_health")
    print("  rel = (coder_health - exact) / exact; abs = coder_health - exact in microseconds;")
    print("  shifted = rel after moving exact by the mean offset (mean(coder_health) - mean(log)):")
    print("  the log's clock stops later than coder_health's (see the notes)")
    for qid in sorted(durs, key=lambda q: -len(durs[q])):
        vals = sorted(durs[qid])
        n = len(vals)
        row = ch.get(qid)
        print()
        print(f"  queryid {qid}: {text[qid][:70]}")
        if row is None:
            print(f"    log calls {n}, coder_health: no entry")
            calls_mismatch.append((qid, n, None))
            continue
        chn = int(row["calls"])
        flag = "" if chn == n else "   <-- differs"
        if chn != n:
            calls_mismatch.append((qid, n, chn))
        log_mean = sum(vals) / n
        ch_mean = float(row["total_ms"]) / chn if chn else log_mean
        offset = ch_mean - log_mean          # ms, usually negative
        off_rel = offset / log_mean if log_mean > 0 else 0.0
        counted = n >= MIN_CALLS
        clean = counted and abs(off_rel) < CLEAN_OFFSET
        print(f"    calls: log {n}, coder_health {chn} (errors {row['errors']}){flag}")
        print(f"    mean: log {log_mean:.3f} ms, coder_health {ch_mean:.3f} ms "
              f"(offset {offset * 1000:+.1f} us, {off_rel * 100:+.2f}%)")
        if counted:
            nqid += 1
            nclean += clean
            offsets.append((off_rel, offset * 1000))
        print(f"    {'':<6} {'exact ms':>11} {'ch ms':>11} {'rel':>8} {'abs us':>9} {'shifted':>8}")
        items = [("min", vals[0], row["min_ms"], False)]
        items += [(name, lower_nearest_rank(vals, q), row[col], True)
                  for (name, q), col in zip(QS, ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms"])]
        items.append(("max", vals[-1], row["max_ms"], False))
        for name, exact, sk, is_q in items:
            try:
                s = float(sk)
            except ValueError:
                print(f"    {name:<6} {exact:>11.3f} {'null':>11}")
                continue
            rel = (s - exact) / exact if exact > 0 else 0.0
            absus = (s - exact) * 1000.0
            moved = exact + offset
            shifted = (s - moved) / moved if moved > 0 else 0.0
            where = f"queryid {qid} {name}"
            note = ""
            if not is_q:
                # min and max are kept exactly: a difference is end-point offset
                w_minmax_us.see(absus, where)
                note = "   (exact in both)"
            elif not counted:
                note = "   (too few calls to count)"
            else:
                nq += 1
                w_raw.see(rel, where)
                if exact >= 1.0:
                    w_raw_ge1.see(rel, where)
                w_shift.see(shifted, where)
                if clean:
                    w_clean.see(rel, where)
                if abs(rel) > 0.01:
                    note = "   > 1%"
            print(f"    {name:<6} {exact:>11.3f} {s:>11.3f} {rel * 100:>+7.2f}% {absus:>+9.1f} "
                  f"{shifted * 100:>+7.2f}%{note}")
    extra = [q for q in ch if q not in durs]
    print()
    if extra:
        print(f"  coder_health has {len(extra)} query ids (for this role) that the log has not: "
              + ", ".join(str(q) for q in extra[:5]))
    if other:
        print(f"  {other} duration lines in another format were ignored")
    print(f"  quantiles p50..p99.9, {nq} compared over {nqid} query ids with >= {MIN_CALLS} calls:")
    print(f"    worst relative error, raw:                       {w_raw.pct()}")
    print(f"    worst relative error, raw, where exact >= 1 ms:  {w_raw_ge1.pct()}")
    print(f"    worst after shifting by the mean offset:         {w_shift.pct()}")
    print(f"    worst on the {nclean} query ids whose mean offset < {CLEAN_OFFSET * 100:.1f}%: "
          f"{w_clean.pct()}")
    if offsets:
        print(f"  mean offset coder_health - log: {min(o[1] for o in offsets):+.1f} to "
              f"{max(o[1] for o in offsets):+.1f} us ({min(o[0] for o in offsets) * 100:+.2f}% to "
              f"{max(o[0] for o in offsets) * 100:+.2f}%)")
    if w_minmax_us.where:
        print(f"  min/max (exact in both): largest difference {w_minmax_us.val:+.1f} us ({w_minmax_us.where})")
    if calls_mismatch:
        print(f"  calls differ for {len(calls_mismatch)} query ids: " +
              ", ".join(f"{q}: log {a} vs {b}" for q, a, b in calls_mismatch[:5]))
    else:
        print("  calls: identical for every query id")

    def short(w):
        return f"{abs(w.val) * 100:.2f}%" if w.where else "n/a"
    line = (f"accuracy: worst relative error {short(w_raw)} over {nqid} queryids x 5 quantiles"
            f" ({short(w_raw_ge1)} where exact >= 1 ms; {short(w_clean)} on the {nclean} queryids"
            f" whose mean offset < {CLEAN_OFFSET * 100:.1f}%)")
    if offsets:
        line += (f"; coder_health reads {-max(o[1] for o in offsets):.0f}..{-min(o[1] for o in offsets):.0f} us"
                 " lower than the log on average")
    line += "; calls identical" if not calls_mismatch else f"; calls differ for {len(calls_mismatch)} queryids"
    write_summary(args.summary, line)


def median(_args):
    vals = [float(x) for x in sys.stdin.read().split()]
    print(f"{statistics.median(vals):.3f}" if vals else "nan")


# ---------------------------------------------------------------------------
# backend: rows "mode  config  n  Ir(backend)  coder_health_calls"
# ---------------------------------------------------------------------------
BACKEND_LABEL = {
    "none": "none",
    "queryid": "none + compute_query_id=on",
    "pgss": "pg_stat_statements",
    "ch": "coder_health (own text ids)",
    "chqid": "coder_health + compute_query_id=on",
    "both": "pg_stat_statements + coder_health",
}


def backend(args):
    ir = {}
    own = {}
    calls = {}
    modes = []
    order = []
    with open(args.raw) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            mode, cfg, n, total, chc = parts[:5]
            if len(parts) > 5 and parts[5]:
                own[(mode, cfg, int(n))] = int(parts[5])
            if mode not in modes:
                modes.append(mode)
            if cfg not in order:
                order.append(cfg)
            if total:
                ir[(mode, cfg, int(n))] = int(total)
            calls[(mode, cfg)] = chc
    lo, hi = args.lo, args.hi
    expect = 100 + lo + hi
    summary = []
    print(f"instructions per statement = (Ir(backend, {hi} statements) - Ir(backend, {lo})) / {hi - lo}")
    for mode in modes:
        per = {}
        for cfg in order:
            if (mode, cfg, lo) in ir and (mode, cfg, hi) in ir:
                per[cfg] = (ir[(mode, cfg, hi)] - ir[(mode, cfg, lo)]) / (hi - lo)
        what = {"prepared": "PQprepare once, PQexecPrepared (named statement: Bind/Execute/Sync)",
                "params": "PQexecParams (unnamed: Parse/Bind/Execute/Sync each time)"}.get(mode, mode)
        print()
        print(f"  {mode}: {what}")
        hdr = f"    {'config':<36} {'instr/stmt':>11} {'added':>9} {'in coder_health.so':>19}  sanity"
        print(hdr)
        print("    " + "-" * (len(hdr) - 4))
        base = per.get("none")
        for cfg in order:
            label = BACKEND_LABEL.get(cfg, cfg)
            if cfg not in per:
                print(f"    {label:<36} failed")
                continue
            added = "" if base is None else f"{per[cfg] - base:+9.0f}"
            mine = ""
            if (mode, cfg, lo) in own and (mode, cfg, hi) in own and cfg not in ("none", "queryid", "pgss"):
                mine = f"{(own[(mode, cfg, hi)] - own[(mode, cfg, lo)]) / (hi - lo):.0f}"
            check = ""
            if cfg in ("ch", "chqid", "both"):
                c = calls.get((mode, cfg), "")
                check = f"coder_health calls {c or '?'} of {expect}"
                if c != str(expect):
                    check += "  WARNING: not every statement was recorded"
            print(f"    {label:<36} {per[cfg]:>11.0f} {added:>9} {mine:>19}  {check}")
        if base is None:
            continue
        line = []
        if "ch" in per:
            line.append(f"own ids {per['ch'] - base:+.0f}")
        if "chqid" in per and "queryid" in per:
            line.append(f"with core ids {per['chqid'] - per['queryid']:+.0f} over compute_query_id=on")
        if "both" in per and "pgss" in per:
            line.append(f"next to pg_stat_statements {per['both'] - per['pgss']:+.0f}")
        if "pgss" in per:
            line.append(f"pg_stat_statements {per['pgss'] - base:+.0f}")
        print("    (in coder_health.so: instructions per statement in its own functions,")
        print("    the steady part of \"added\"; the rest is the clock and PostgreSQL's")
        print("    own work, which moves with recv() waits and memory layout)")
        print()
        if "ch" in per and "pgss" in per and per["pgss"] > base:
            print(f"    coder_health (own ids) / pg_stat_statements, instructions added: "
                  f"{fmt_ratio((per['ch'] - base) / (per['pgss'] - base))}")
        summary.append(f"{mode}: " + ", ".join(line))
    write_summary(args.summary, "backend instructions/stmt added: " + "; ".join(summary))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("instructions")
    a.add_argument("raw")
    a.add_argument("--summary")
    a = sub.add_parser("throughput")
    a.add_argument("raw")
    a.add_argument("--clk-tck", type=float, default=100.0)
    a.add_argument("--summary")
    a = sub.add_parser("accuracy")
    a.add_argument("log")
    a.add_argument("ch")
    a.add_argument("--user")
    a.add_argument("--summary")
    a = sub.add_parser("backend")
    a.add_argument("raw")
    a.add_argument("--lo", type=int, required=True)
    a.add_argument("--hi", type=int, required=True)
    a.add_argument("--summary")
    sub.add_parser("median")
    args = p.parse_args()
    {"instructions": instructions, "backend": backend, "throughput": throughput,
     "accuracy": accuracy, "median": median}[args.cmd](args)


if __name__ == "__main__":
    main()
