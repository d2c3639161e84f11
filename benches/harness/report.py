"""The harness's report: aggregates the runs of results.json, evaluates the targets and writes
RESULTS.md (and, after a full run, the targets block of the repository's README.md).

Results are keyed by (dataset, metric, system, threads). Standard library only.
"""

from __future__ import annotations

import math
import statistics

import systems as S

MIB = 1024 * 1024
ITEMSIZE = {"f32": 4, "f16": 2, "u8": 1, "u32": 4}

# extra keys that mean the same thing in different workers (py_worker.py, bench_driver.rs)
ALIASES = {
    "after_compact_bytes": ("after_compact_bytes", "after_compact"),
    "live_bytes": ("live_bytes", "live"),
    "peak_rss_anon_bytes": ("peak_rss_anon_bytes", "peak"),
    "compressed_bytes": ("compressed_bytes",),
}

TIME_METRICS = [m for m in S.METRICS if S.UNITS[m] == "s"]

# Equal-thread targets: (ours, peer, threshold). Each covers every time metric both systems
# have, on every dataset, at every thread count both ran: the median over reps of
# t(peer) / t(ours) must reach the threshold in every one of these cells. Ours is the Python
# module, like the peers (the original library is a Python package).
COMPARISONS = [
    ("cimg-python-anon", "compressed-image-1.0.1", 1.0),
    ("cimg-python-anon", "blosc2-schunk-mem", 1.0),
    ("cimg-python", "blosc2-frame-disk", 1.0),
    ("cimg-python", "blosc2-frame-mmap", 1.0),
]
# Cells below this ratio are counted in the summary line.
SUMMARY_BELOW = 0.95

# Thread-scaling targets on the target dataset: (system, metric, threshold) for
# t(1 thread) / t(all CPUs).
SCALING = [
    ("cimg-python-anon", "rewrite", 1.3),
    ("cimg-python", "rewrite", 1.3),
]

# Absolute targets: (label, kind, metric, system, threshold, dataset or None for the target
# dataset, peer shown for reference or None).
#   kind "max_s": value (s) <= threshold; "max_bytes": value <= threshold;
#   "compact": after_compact ~= live.
ABSOLUTE = [
    ("open (256-chunk mask_f32): cimg-file ≤ 0.3 ms", "max_s", "open", "cimg-file", 0.3e-3, "mask_f32", None),
    ("open (256-chunk mask_f32): cimg-python ≤ 0.3 ms", "max_s", "open", "cimg-python", 0.3e-3, "mask_f32", None),
    ("lazy_rss delta: cimg-file ≤ 16 MiB", "max_bytes", "lazy_rss", "cimg-file", 16 * MIB, None, "compressed-image-1.0.1"),
    ("lazy_rss delta: cimg-python ≤ 16 MiB", "max_bytes", "lazy_rss", "cimg-python", 16 * MIB, None, "compressed-image-1.0.1"),
    ("size after 6 rewrites + compact = live: cimg-file", "compact", "size_rewrites", "cimg-file", None, None, None),
    ("size after 6 rewrites + compact = live: cimg-python", "compact", "size_rewrites", "cimg-python", None, None, None),
]
COMPACT_SLACK = 64 * 1024  # bytes of headers, table and slots allowed above the live bytes
COMPACT_SLACK_FRAC = 0.01
TARGET_DATASET = "render_f32"


def xget(extra: dict, key: str):
    for k in ALIASES.get(key, (key,)):
        v = extra.get(k)
        if isinstance(v, (int, float)):
            return v
    return None


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    if ms < 1:
        return f"{ms:.3f}"
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def threads_label(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def collect(runs: list[dict]) -> dict:
    """(dataset, metric, system, threads) -> {'ok': {rep: (value, extra)}, 'failed': [...], 'skipped': reason}"""
    agg: dict = {}
    for r in runs:
        k = (r["dataset"], r["metric"], r["system"], r["threads"])
        a = agg.setdefault(k, {"ok": {}, "failed": [], "skipped": None})
        if r["status"] == "ok":
            a["ok"][r["rep"]] = (r["value"], r.get("extra", {}))
        elif r["status"] == "failed":
            a["failed"].append(r)
        else:
            a["skipped"] = r.get("reason", "skipped")
    return agg


def values(a: dict | None) -> dict:
    """rep -> value of an aggregate (empty when it has none)."""
    return {r: v for r, (v, _) in a["ok"].items()} if a else {}


def why_missing(a: dict | None, name: str) -> str:
    if a is None:
        return f"{name}: not run"
    if a["failed"] and not a["ok"]:
        return f"{name}: FAILED"
    if a["skipped"] and not a["ok"]:
        return f"{name}: skipped ({a['skipped']})"
    return ""


def paired_ratios(num: dict | None, den: dict | None) -> list[float]:
    """Per rep num / den over the reps both have."""
    nv, dv = values(num), values(den)
    return [nv[r] / dv[r] for r in dv if r in nv and dv[r] > 0]


def cell(metric: str, a: dict | None, nbytes: int) -> str:
    if a is None:
        return ""
    vals = list(values(a).values())
    fails = len(a["failed"])
    if not vals:
        if fails:
            return f"FAILED ({fails})"
        return "n/a" if a["skipped"] else ""
    med, lo, hi = statistics.median(vals), min(vals), max(vals)
    oks = [e for _, e in a["ok"].values()]
    if metric == "two_threads":
        s = f"{med:.2f}× [{lo:.2f}–{hi:.2f}]"
    elif metric == "lazy_rss":
        s = f"{med / MIB:.1f} MiB [{lo / MIB:.1f}–{hi / MIB:.1f}]"
        peaks = [xget(e, "peak_rss_anon_bytes") for e in oks if xget(e, "peak_rss_anon_bytes")]
        if peaks:
            s += f"<br>peak {statistics.median(peaks) / MIB:.0f} MiB"
    elif metric == "size_rewrites":
        s = f"{med / MIB:.1f} MiB [{lo / MIB:.1f}–{hi / MIB:.1f}]"
        comp = [xget(e, "after_compact_bytes") for e in oks if xget(e, "after_compact_bytes") is not None]
        live = [xget(e, "live_bytes") for e in oks if xget(e, "live_bytes") is not None]
        if comp:
            s += f"<br>compact {statistics.median(comp) / MIB:.1f}"
        if live:
            s += f", live {statistics.median(live) / MIB:.1f}"
    else:
        s = f"{fmt_ms(med)} ms [{fmt_ms(lo)}–{fmt_ms(hi)}]"
        if metric in S.THROUGHPUT_METRICS:
            s += f"<br>{nbytes / med / 1e6:.0f} MB/s"
    if fails:
        s += f"<br>+{fails} FAILED"
    return s


def fmt_x(x: float, thr: float = 1.0) -> str:
    """A ratio to 2 decimals, or 3 when 2 would round a value below `thr` up to it."""
    s = f"{x:.2f}×"
    return f"{x:.3f}×" if x < thr and s == f"{thr:.2f}×" else s


def fmt_ratio(ratios: list[float], thr: float | None = None) -> str:
    med = statistics.median(ratios)
    s = fmt_x(med, thr or 1.0)
    if len(ratios) > 1:
        s += f" [{min(ratios):.2f}–{max(ratios):.2f}]"
    return f"**{s}**" if thr is not None and med < thr else s


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------


def comparison_cells(agg: dict, ours: str, peer: str, dataset_names: list[str]) -> list[dict]:
    """Every (dataset, time metric, threads) where both systems have the metric: its per-rep
    ratios t(peer) / t(ours), or `missing` when either failed."""
    cells = []
    for ds in dataset_names:
        for metric in TIME_METRICS:
            counts = sorted({k[3] for k in agg if k[0] == ds and k[1] == metric and k[2] in (ours, peer)})
            for n in counts:
                a, b = agg.get((ds, metric, ours, n)), agg.get((ds, metric, peer, n))
                if a is None or b is None or (a["skipped"] and not a["ok"]) or (b["skipped"] and not b["ok"]):
                    continue  # one of them has no such metric (or did not run at n)
                c = {"dataset": ds, "metric": metric, "threads": n}
                ratios = paired_ratios(b, a)
                if ratios:
                    c["ratios"] = ratios
                    c["median"] = statistics.median(ratios)
                else:
                    c["missing"] = why_missing(a, ours) or why_missing(b, peer) or "no rep with both values"
                cells.append(c)
    return cells


def cell_name(c: dict) -> str:
    return f"{c['metric']} · {c['dataset']} · {threads_label(c['threads'])}"


def geomean(xs: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(x) for x in xs))


def eval_comparison(agg: dict, ours: str, peer: str, thr: float, dataset_names: list[str]) -> dict:
    cells = comparison_cells(agg, ours, peer, dataset_names)
    row = {"target": f"{ours} ≥ {thr:g}× {peer}: every time metric × dataset at equal threads",
           "kind": "equal", "ours": ours, "peer": peer, "thr": thr, "threshold": f"every cell ≥ {thr:g}×", "cells": cells, "status": "missing", "detail": ""}
    measured = [c for c in cells if "median" in c]
    missing = [c for c in cells if "missing" in c]
    if not measured:
        row["detail"] = "no cell with both systems" if not missing else missing[0]["missing"]
        return row
    below = [c for c in measured if c["median"] < thr]
    worst = min(measured, key=lambda c: c["median"])
    row["result"] = (f"{len(measured)} cells, {len(below)} below {thr:g}×; min {fmt_x(worst['median'], thr)} "
                     f"({cell_name(worst)}); geomean {geomean([c['median'] for c in measured]):.2f}×")
    if missing:
        row["result"] += f"; {len(missing)} missing"
    row["status"] = "not met" if below else ("missing" if missing else "met")
    if missing and not below:
        row["detail"] = missing[0]["missing"]
    return row


def eval_scaling(agg: dict, system: str, metric: str, thr: float, ds: str | None, all_cpus: int) -> dict:
    row = {"target": f"{metric} on {all_cpus} threads ≥ {thr:g}× on 1 thread ({ds or TARGET_DATASET}, 4 MiB chunks): {system}",
           "kind": "scaling", "threshold": f"≥ {thr:g}×", "status": "missing", "detail": ""}
    if ds is None:
        row["detail"] = "dataset not in this run"
        return row
    if all_cpus < 2:
        row["detail"] = "one CPU: no second thread count"
        return row
    one, many = agg.get((ds, metric, system, 1)), agg.get((ds, metric, system, all_cpus))
    ratios = paired_ratios(one, many)
    if not ratios:
        row["detail"] = why_missing(one, f"{system} at 1 thread") or why_missing(many, f"{system} at {all_cpus}")
        return row
    row["result"] = (f"{fmt_ratio(ratios)} ({fmt_ms(statistics.median(values(one).values()))} ms → "
                     f"{fmt_ms(statistics.median(values(many).values()))} ms)")
    row["status"] = "met" if statistics.median(ratios) >= thr else "not met"
    return row


def eval_absolute(agg: dict, spec: tuple, target_ds: str | None, quick: bool, all_cpus: int) -> dict:
    label, kind, metric, system, thr, on, peer = spec
    row = {"target": label, "kind": kind, "status": "missing", "detail": ""}
    ds = target_ds
    if on and target_ds is not None:
        ds = on + ("_quick" if quick else "")
    fixed = S.FIXED_THREADS[metric]
    n = all_cpus if fixed == "all" else fixed
    if kind == "max_s":
        row["threshold"] = f"≤ {thr * 1e3:g} ms"
    elif kind == "max_bytes":
        row["threshold"] = f"≤ {thr / MIB:g} MiB"
    else:
        row["threshold"] = "≤ live + max(64 KiB, 1 %)"
    if ds is None:
        row["detail"] = "dataset not in this run"
        return row
    a = agg.get((ds, metric, system, n))
    vals = list(values(a).values())
    if not vals:
        row["detail"] = why_missing(a, system)
        return row
    med, lo, hi = statistics.median(vals), min(vals), max(vals)
    if kind == "max_s":
        row["result"] = f"{fmt_ms(med)} ms [{fmt_ms(lo)}–{fmt_ms(hi)}]"
        row["status"] = "met" if med <= thr else "not met"
    elif kind == "max_bytes":
        row["result"] = f"{med / MIB:.1f} MiB [{lo / MIB:.1f}–{hi / MIB:.1f}]"
        pv = list(values(agg.get((ds, metric, peer, n))).values()) if peer else []
        if pv:
            row["result"] += f" ({peer}: {statistics.median(pv) / MIB:.1f} MiB)"
        row["status"] = "met" if med <= thr else "not met"
    else:
        over = []
        for _, e in a["ok"].values():
            c, live = xget(e, "after_compact_bytes"), xget(e, "live_bytes")
            if c is not None and live is not None:
                over.append((c - live, c, live))
        if not over:
            row["detail"] = f"{system}: extra lacks after_compact_bytes/live_bytes"
            return row
        d, c, live = max(over)
        row["result"] = f"{c / MIB:.2f} MiB vs live {live / MIB:.2f} MiB: {int(d):+d} B"
        row["status"] = "met" if 0 <= d <= max(COMPACT_SLACK, COMPACT_SLACK_FRAC * live) else "not met"
    return row


def target_dataset(datasets: list[dict]) -> str | None:
    return next((d["name"] for d in datasets if d["base"] == TARGET_DATASET), None)


def eval_targets(agg: dict, doc: dict) -> list[dict]:
    names = [d["name"] for d in doc["datasets"]]
    tds = target_dataset(doc["datasets"])
    all_cpus = doc["config"]["all_cpus"]
    rows = [eval_comparison(agg, o, p, thr, names) for o, p, thr in COMPARISONS]
    rows += [eval_scaling(agg, s, m, thr, tds, all_cpus) for s, m, thr in SCALING]
    rows += [eval_absolute(agg, spec, tds, doc["config"]["quick"], all_cpus) for spec in ABSOLUTE]
    return rows


def summary_line(rows: list[dict]) -> str:
    """How the equal-thread cells of every comparison fare, in one line."""
    meds = [c["median"] for r in rows if r["kind"] == "equal" for c in r["cells"] if "median" in c]
    if not meds:
        return "Equal-thread cells: none measured."
    below = sum(1 for x in meds if x < SUMMARY_BELOW)
    below1 = sum(1 for x in meds if x < 1.0)
    return (f"Equal-thread cells ({len([r for r in rows if r['kind'] == 'equal'])} comparisons above, ours vs peer): "
            f"{len(meds)} cells, {below} below {SUMMARY_BELOW:g}× ({below1} below 1×), "
            f"geometric mean {geomean(meds):.2f}×.")


def status_text(r: dict) -> str:
    s = {"met": "met", "not met": "**not met**", "missing": "missing"}[r["status"]]
    if r["detail"]:
        s += f" ({r['detail']})"
    return s


# ---------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------


def write_header(w, doc: dict) -> None:
    m, cfg = doc["machine"], doc["config"]
    w("# Side-by-side benchmark results")
    w("")
    w(f"Generated by `{cfg['command']}` on {m['date_utc']} in {doc['duration_s'] / 60:.1f} min "
      f"({cfg['reps']} rep{'s' if cfg['reps'] != 1 else ''}, {'quick sizes' if cfg['quick'] else 'full sizes'}). "
      "Raw values: `benches/harness/work/results.json`; the harness: `benches/harness/README.md`.")
    w("")
    w(f"Machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_total_bytes'] / 2**30:.1f} GiB RAM, Linux {m['kernel']}; "
      f"load average before {m['load_before']}, after {m['load_after']} (a shared, noisy VM: "
      "expect 10–20 % run-to-run differences). Commit `{}`{}.".format(
          m["git_commit"][:12], f" with {m['git_dirty_paths']} uncommitted paths" if m.get("git_dirty_paths") else ""))
    pv = m["versions"]["peers_venv"]
    w(f"Peers: compressed-image {pv.get('compressed-image', '?')}, blosc2 {pv.get('blosc2', '?')}, zarr {pv.get('zarr', '?')} "
      f"(numcodecs {pv.get('numcodecs', '?')}), numpy {pv.get('numpy', '?')}. Ours: {m['versions']['ours_module'].split()[0]}, {m['rustc']}.")
    w("")
    counts = " and ".join(str(n) for n in cfg["threads"])
    w("Every system: LZ4 level 9, byte shuffle, typesize = element size, 32 KiB blocks, chunks of whole "
      f"scanlines up to 4 MiB. Thread counts: {counts} ({cfg['all_cpus']} = every CPU the harness may use). "
      "At thread count n every system has each of its thread knobs set to n and its worker process may run on "
      "n CPUs only (sched_setaffinity), which also bounds constructors that take no thread argument; "
      "the chunk-by-chunk loops (`read_all`, `read_all_again`, `random`, `rewrite`) give c-blosc2 n threads "
      "inside each chunk; `open` runs once, on 1 thread; `two_threads`, `lazy_rss` "
      f"and `size_rewrites` once, on {cfg['all_cpus']}. `*_durable`: the same work as the metric without the "
      "suffix, measured in the same run, plus the final flush to disk (file systems only). Each value is one "
      "worker process; reps are interleaved (rep → dataset → metric → thread count → systems in a shuffled "
      "order). Cells: median [min–max] over reps; MB/s = uncompressed MB (10⁶ B) per second at the median.")
    w("")
    if doc.get("rust_status", ("ok", ""))[0] != "ok":
        w(f"**Rust systems ({', '.join(s for s, e in S.SYSTEMS.items() if e == 'rust')}) not run:** "
          + doc["rust_status"][1].splitlines()[0])
        w("")


def write_targets(w, doc: dict, rows: list[dict]) -> None:
    tds = target_dataset(doc["datasets"])
    w("## Targets")
    w("")
    w("Speed ratio = peer time / our time, per rep (> 1: ours faster); a cell's value is the median over reps. "
      "The equal-thread targets take every time metric both systems have (durable variants and `open` "
      "included), on every dataset, at every thread count; the rows after them are on "
      f"{tds or TARGET_DATASET} unless they say otherwise. \"missing\": a system failed or did not run.")
    w("")
    if doc["config"]["quick"]:
        w("Quick sizes: a 2048² channel is only a few chunks and each value a single ~10 ms run, so these "
          "ratios are a smoke test, not a measurement.")
        w("")
    w("| target | result | threshold | status |")
    w("|---|---|---|---|")
    for r in rows:
        w(f"| {r['target']} | {r.get('result', '')} | {r['threshold']} | {status_text(r)} |")
    w("")
    w(summary_line(rows))
    w("")


def write_ratio_tables(w, doc: dict, rows: list[dict]) -> None:
    names = [d["name"] for d in doc["datasets"]]
    w("## Equal-thread ratios")
    w("")
    w("t(peer) / t(ours) per cell, median [min–max] over reps; bold: below the target.")
    w("")
    for r in (r for r in rows if r["kind"] == "equal"):
        thr = r["thr"]
        w(f"### {r['ours']} vs {r['peer']}")
        w("")
        if not r["cells"]:
            w("(no cell with both systems)")
            w("")
            continue
        by = {(c["metric"], c["threads"], c["dataset"]): c for c in r["cells"]}
        w("| metric | " + " | ".join(names) + " |")
        w("|---|" + "---|" * len(names))
        for metric in TIME_METRICS:
            for n in sorted({k[1] for k in by if k[0] == metric}):
                cs = [by.get((metric, n, ds)) for ds in names]
                w(f"| {metric} · {threads_label(n)} | "
                  + " | ".join("" if c is None else (fmt_ratio(c["ratios"], thr) if "ratios" in c else "missing") for c in cs)
                  + " |")
        w("")


def write_scaling_table(w, doc: dict, agg: dict) -> None:
    all_cpus = doc["config"]["all_cpus"]
    if all_cpus < 2 or 1 not in doc["config"]["threads"]:
        return
    names = [d["name"] for d in doc["datasets"]]
    w(f"## Thread scaling: t(1 thread) / t({all_cpus} threads)")
    w("")
    w("| system · metric | " + " | ".join(names) + " |")
    w("|---|" + "---|" * len(names))
    for metric in ("construct", "decompress", "rewrite"):
        for system in doc["config"]["systems"]:
            cells = [paired_ratios(agg.get((ds, metric, system, 1)), agg.get((ds, metric, system, all_cpus)))
                     for ds in names]
            if any(cells):
                w(f"| {system} · {metric} | " + " | ".join(fmt_ratio(c) if c else "" for c in cells) + " |")
    w("")


def write_dataset_tables(w, doc: dict, agg: dict) -> None:
    cfg = doc["config"]
    for d in doc["datasets"]:
        name = d["name"]
        nbytes = d["width"] * d["height"] * ITEMSIZE[d["dtype"]]
        w(f"## {name}: {d['width']}×{d['height']} {d['dtype']} ({nbytes / MIB:.0f} MiB)")
        w("")
        keys = [k for k in agg if k[0] == name]
        syss = [s for s in cfg["systems"] if any(k[2] == s for k in keys)]
        if not syss:
            w("(no results)")
            w("")
            continue
        for i, n in enumerate(sorted({k[3] for k in keys})):
            w(f"### {name} · {threads_label(n)}")
            w("")
            w("| metric | " + " | ".join(syss) + " |")
            w("|---|" + "---|" * len(syss))
            for metric in cfg["metrics"]:
                if any((name, metric, s, n) in agg for s in syss):
                    w(f"| {metric} | " + " | ".join(cell(metric, agg.get((name, metric, s, n)), nbytes) for s in syss) + " |")
            if i == 0:
                ratios = []
                for s in syss:
                    cb = [xget(e, "compressed_bytes") for k in keys if k[1] == "construct" and k[2] == s
                          for _, e in agg[k]["ok"].values() if xget(e, "compressed_bytes")]
                    ratios.append(f"{nbytes / statistics.median(cb):.2f}" if cb else "")
                if any(ratios):
                    w("| ratio (raw / compressed) | " + " | ".join(ratios) + " |")
            w("")


NOTES = [
    "`construct`: build the channel from the full array. For file systems the file is written and closed "
    "(ours: `Channel.create` returned, which for a named file already means fsync'd and renamed into place, so "
    "ours pays a flush the others do not; blosc2 frames: the handle freed; zarr: `a[:] = data` returned). `construct_durable` adds the flush to disk: ours `sync()` (fdatasync), blosc2 frames "
    "`os.fsync` of the frame file and its directory, zarr `os.fsync` of every file and directory of the store. "
    "In-memory systems (compressed-image 1.0.1, blosc2-schunk-mem, the anonymous channels) have no durable variant.",
    "`rewrite`: `set_chunk` (or the system's equivalent) of every chunk from the source, each call visible when "
    "it returns; `rewrite_durable` adds the same flush after the loop.",
    "`read_all` for file systems opens a fresh handle (untimed) on a file built once per run; ours verifies "
    "each blob's CRC-32 on the first read through a handle, so `read_all` includes it and `read_all_again` does not.",
    "`random`: 64 single-chunk reads at seeded indices on a fresh handle, value = median latency.",
    "`open`: median of 50 × (open + read shape/chunk count); closing is not timed.",
    "`lazy_rss`: a fresh process; RssAnon after imports, then a lazy 16384×16384 f32 channel of zeros, every "
    "10th of its 256 chunks set from render-like rows (the caller's array is freed before each sample); "
    "value = peak RssAnon − baseline. Run under one dataset only (it makes its own data).",
    "`two_threads`: two channels from the same data, each read whole by its own Python thread vs both by one "
    "thread (after a warm pass); value = t_one / t_two, median of 3 alternations in the process.",
    "`size_rewrites`: file size after creating the file and rewriting every chunk 6 times; then compaction "
    "(ours `compact()`; blosc2 has none, so `to_cframe()` into a new file; zarr has no dead space).",
    "`memcpy` has no threads: it runs at 1 thread only. `memcpy`, `blosc2-raw`, `cimg-file`, `cimg-anon` are "
    "measured by `examples/bench_driver.rs` (its doc comment says how); the other systems by "
    "`benches/harness/py_worker.py`.",
]


def err_summary(stderr: str) -> str:
    """The telling line of a worker's stderr: a Rust panic's message or a Python exception."""
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if "panicked at" in l:
            return (lines[i + 1] if i + 1 < len(lines) else l)[:400]
    rest = [l for l in lines if not (l.startswith(("note:", "stack backtrace", "at ")) or l.split(":")[0].isdigit())]
    return rest[-1][:400] if rest else ""


def write_notes_and_failures(w, doc: dict) -> None:
    w("## Notes")
    w("")
    for n in NOTES:
        w("- " + n)
    notes: dict = {}
    for r in doc["runs"]:
        n = (r.get("extra") or {}).get("notes")
        if isinstance(n, dict):
            for k, v in n.items():
                notes.setdefault(r["system"], {})[k] = v
    for s, n in notes.items():
        w(f"- `{s}`: " + "; ".join(f"{k}: {v}" for k, v in n.items()))
    leaks: dict = {}
    for r in doc["runs"]:
        if r.get("left_in_workdir"):
            leaks.setdefault(r["system"], []).extend(r["left_in_workdir"])
    for s, names in leaks.items():
        w(f"- `{s}` left {len(names)} files in the work dir (removed by run.py), e.g. `{names[0]}`.")
    fails = [r for r in doc["runs"] if r["status"] == "failed"]
    w("")
    w(f"## Failures ({len(fails)})")
    w("")
    if not fails:
        w("None.")
    seen = set()
    for r in fails:
        key = (r["system"], r["metric"], r["dataset"], r["threads"], r.get("error"))
        if key in seen:
            continue
        seen.add(key)
        err = err_summary(r.get("stderr", ""))
        w(f"- {r['system']} / {r['metric']} / {r['dataset']} / {threads_label(r['threads'])} (rep {r['rep']}): "
          f"{r.get('error')}" + (f": `{err}`" if err else ""))
    w("")


def write_report(doc: dict, path: str) -> tuple[str, list[dict]]:
    """Writes RESULTS.md to `path`; returns its text and the evaluated targets."""
    agg = collect(doc["runs"])
    rows = eval_targets(agg, doc)
    lines: list[str] = []
    w = lines.append
    write_header(w, doc)
    write_targets(w, doc, rows)
    write_ratio_tables(w, doc, rows)
    write_scaling_table(w, doc, agg)
    write_dataset_tables(w, doc, agg)
    write_notes_and_failures(w, doc)
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text)
    return text, rows


README_START, README_END = "<!-- targets:start -->", "<!-- targets:end -->"


def update_readme(report: str, readme: str) -> None:
    """Copy the run's header lines, Targets table and summary line into `readme` between its
    markers (left alone when it has none)."""
    lines = report.splitlines()
    keep = [l for l in lines if l.startswith(("Generated by", "Machine:", "Peers:"))]
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("| target |"))
    except StopIteration:
        return
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    summary = [l for l in lines[end:] if l.startswith("Equal-thread cells")][:1]
    block = "\n\n".join(keep) + "\n\n" + "\n".join(lines[start:end]) + "".join("\n\n" + s for s in summary)
    block = block.replace("`benches/harness/work/results.json`", "`benches/harness/work/results.json` (not committed)")
    with open(readme) as f:
        text = f.read()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with open(readme, "w") as f:
        f.write(head + README_START + "\n" + block + "\n" + README_END + tail)
