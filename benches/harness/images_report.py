"""The report of the image-file benchmark (images.py): aggregates its runs, evaluates the
targets and writes benches/IMAGES.md. Standard library only."""

from __future__ import annotations

import os
import statistics

import report as R

MIB = 1024 * 1024
CHUNK_BYTES = 4 * MIB  # the default chunk size of every compressed-image system
MEMORY_SLACK = 64 * MIB  # the bound of the memory case: 4 chunks per channel + this

LABELS = {
    "exr-crate": "`exr` crate: whole file into memory (the floor)",
    "rust-anon": "ours Rust `AnyImage::read`, anonymous",
    "rust-file": "ours Rust `AnyImage::read`, named file",
    "cimg-import": "`cimg import`",
    "py-read": "ours Python `Image.read(dtype)`",
    "py-native": "ours Python `Image.read_native`",
    "py-native-file": "ours Python `Image.read_native(path=)`",
    "oiio": "OpenImageIO `read_image` (wheel)",
    "original": "compressed-image 1.0.1 `Image.read(dtype)`",
    "rust-write": "ours Rust `AnyImage::write`",
    "cimg-export": "`cimg export`",
    "oiio-write": "OpenImageIO `write_image` from memory",
}

# Targets over the cells (dataset, thread count) of cases of `kinds` where both systems ran:
# the median over reps of field(num) / field(den) must be ≥ `min` (or ≤ `max`) in every cell.
TARGETS = [
    {"target": "ours Python `Image.read` vs compressed-image 1.0.1 `Image.read`, time", "kinds": ("import",),
     "num": "original", "den": "py-read", "field": "time_s", "min": 1.2},
    {"target": "ours Python `Image.read` vs OpenImageIO `read_image`, time", "kinds": ("import",),
     "num": "oiio", "den": "py-read", "field": "time_s", "min": 1.0},
    {"target": "peak RSS: ours Python `read_native(path=)` ≤ 1/8 of OpenImageIO's", "kinds": ("import", "memory"),
     "num": "oiio", "den": "py-native-file", "field": "peak_rss_bytes", "min": 8.0},
    {"target": "export: ours Rust `AnyImage::write` vs OpenImageIO writing from memory, time", "kinds": ("export",),
     "num": "oiio-write", "den": "rust-write", "field": "time_s", "min": 1.0},
    {"target": "`cimg import` within 5 % of `AnyImage::read` into a file (process wall times)",
     "kinds": ("import",), "num": "cimg-import", "den": "rust-file", "field": "wall_s", "max": 1.05},
    {"target": "`cimg export` within 5 % of `AnyImage::write` (process wall times)", "kinds": ("export",),
     "num": "cimg-export", "den": "rust-write", "field": "wall_s", "max": 1.05},
]
MEMORY_BOUNDED = ["rust-file", "cimg-import"]
EXPORT_FORMATS = {"exr": "OpenEXR, ZIP", "tif": "TIFF, Deflate", "png": "PNG"}

# Ratio columns of the import and export tables: (heading, num, den, field)
IMPORT_RATIOS = [
    ("1.0.1 / ours Py", "original", "py-read", "time_s"),
    ("OIIO / ours Py", "oiio", "py-read", "time_s"),
    ("OIIO / ours Rust", "oiio", "rust-anon", "time_s"),
    ("exr crate / ours Rust", "exr-crate", "rust-anon", "time_s"),
    ("RSS: OIIO / ours Py file", "oiio", "py-native-file", "peak_rss_bytes"),
    ("cimg / Rust file (wall)", "cimg-import", "rust-file", "wall_s"),
]
EXPORT_RATIOS = [
    ("OIIO / ours Rust", "oiio-write", "rust-write", "time_s"),
    ("cimg / Rust (wall)", "cimg-export", "rust-write", "wall_s"),
    ("file size: OIIO / ours", "oiio-write", "rust-write", "output_bytes"),
    ("RSS: OIIO / ours Rust", "oiio-write", "rust-write", "peak_rss_bytes"),
]

NOTES = [
    "Each value is one process; its peak RSS is `ru_maxrss` from `wait4` (the largest resident set the "
    "process reached, file-backed and shared pages included: an anonymous image's memfd counts; it is at least "
    "the RSS the process inherited when forked from the harness, {harness} MiB). Python processes start at about "
    "the RSS of the interpreter, numpy and the module (`baseline_rss_bytes` in the raw results).",
    "Times: the library call alone, measured inside the process after its imports (`seconds`); for `cimg` the "
    "whole process (start, the same library call, its summary line, exit), and the cimg rows of the targets "
    "compare process wall times on both sides.",
    "Threads: at n, each process may run on n CPUs only (`sched_setaffinity`). OpenImageIO gets "
    "`attribute(\"threads\", n)` and `attribute(\"exr_threads\", n)`; ours `set_threads(n)` for exports; our "
    "imports, `cimg` and the `exr` crate have no thread argument and size their pools by the CPUs the process "
    "may use; compressed-image 1.0.1 has no thread argument either and sizes its pools by the machine's CPU count, "
    "so its threads share the n CPUs.",
    "Ours and compressed-image 1.0.1 store the same settings: LZ4 level 9, byte shuffle, 32 KiB blocks, 4 MiB "
    "chunks. `Image.read(dtype)` is given the type OpenImageIO merges the file's channels to (float16 for RGBA "
    "half, float32 for half + float, uint16, uint8); OpenImageIO reads in the file's `spec.format` (the same "
    "types); `read_native` keeps each channel's own type and runs only where that differs (the 8-channel files). "
    "OpenImageIO opens files with `oiio:UnassociatedAlpha` set, so that it returns (and writes back) a PNG's "
    "colour as stored, as ours imports it; compressed-image 1.0.1 reads through OpenImageIO's default, which "
    "multiplies colour by alpha.",
    "Durability: ours writing a named file (`rust-file`, `cimg`, `read_native(path=)`, every export of ours) "
    "makes it durable (fsync) and renames it into place before the call returns; OpenImageIO's export time "
    "includes an `os.fsync` of the file after `close()`. Exports of ours read a .cimg file imported from the "
    "same image file (untimed, before the runs); OpenImageIO writes the array it read from the image file "
    "(untimed). Compression levels are each writer's default.",
    "Image files: written by OpenEXR's Python bindings, tifffile and Pillow (benches/harness/images_data.py), "
    "read from the page cache (each file is read once before its case).",
]


def field(rec: dict, name: str):
    v = rec.get(name)
    if v is None:
        v = (rec.get("extra") or {}).get(name)
    return v if isinstance(v, (int, float)) else None


def collect(runs: list[dict]) -> dict:
    """(case, dataset, system, threads) -> {'ok': {rep: record}, 'failed': [records]}"""
    agg: dict = {}
    for r in runs:
        a = agg.setdefault((r["case"], r["dataset"], r["system"], r["threads"]), {"ok": {}, "failed": []})
        if r["status"] == "ok":
            a["ok"][r["rep"]] = r
        else:
            a["failed"].append(r)
    return agg


def paired(agg: dict, key_num: tuple, key_den: tuple, name: str) -> list[float]:
    """Per-rep ratios field(num) / field(den) over the reps both have."""
    a, b = agg.get(key_num), agg.get(key_den)
    if not a or not b:
        return []
    out = []
    for rep, rb in b["ok"].items():
        ra = a["ok"].get(rep)
        x, y = (field(ra, name), field(rb, name)) if ra else (None, None)
        if x is not None and y:
            out.append(x / y)
    return out


def cells(agg: dict, kinds: tuple, num: str, den: str) -> list[tuple]:
    """(kind, dataset, threads) of every case where both systems ran."""
    keys = {(k[0], k[1], k[3]) for k in agg if k[0] in kinds and k[2] == num}
    return sorted(c for c in keys if (c[0], c[1], den, c[2]) in agg)


def eval_target(agg: dict, t: dict) -> dict:
    rows = []
    for kind, ds, n in cells(agg, t["kinds"], t["num"], t["den"]):
        ratios = paired(agg, (kind, ds, t["num"], n), (kind, ds, t["den"], n), t["field"])
        rows.append({"name": f"{ds} · {R.threads_label(n)}", "median": statistics.median(ratios) if ratios else None})
    thr = t.get("min", t.get("max"))
    bad = (lambda x: x < thr) if "min" in t else (lambda x: x > thr)
    got = [c for c in rows if c["median"] is not None]
    missing = len(rows) - len(got)
    below = [c for c in got if bad(c["median"])]
    res = {"target": t["target"], "threshold": ("≥ " if "min" in t else "≤ ") + f"{thr:g}×", "status": "missing",
           "result": "no cell"}
    if got:
        worst = (min if "min" in t else max)(got, key=lambda c: c["median"])
        res["result"] = (f"{len(got)} cells, {len(below)} {'below' if 'min' in t else 'above'}, worst "
                         f"{worst['median']:.2f}× ({worst['name']}), geomean {R.geomean([c['median'] for c in got]):.2f}×")
        res["status"] = "not met" if below else ("missing" if missing else "met")
    if missing:
        res["result"] += f"; {missing} cells without a value (a system failed)"
    return res


def memory_bound(ds: dict) -> tuple[int, int]:
    """(bound, chunk bytes of the widest channel): 4 chunks per channel + 64 MiB at the
    default chunk size, each chunk whole scanlines of the channel's stored type."""
    itemsize = {"float16": 2, "float32": 4, "uint16": 2, "uint8": 1, "uint32": 4}
    total, widest = MEMORY_SLACK, 0
    for c in ds["channels"]:
        row = ds["width"] * itemsize[c["dtype"]]
        chunk = min(ds["height"], max(1, CHUNK_BYTES // row)) * row
        total += 4 * chunk
        widest = max(widest, chunk)
    return total, widest


def eval_memory(agg: dict, datasets: dict) -> list[dict]:
    rows = []
    for key in sorted(k for k in agg if k[0] == "memory" and k[2] in MEMORY_BOUNDED):
        ds = datasets[key[1]]
        bound, chunk = memory_bound(ds)
        peaks = [field(r, "peak_rss_bytes") for r in agg[key]["ok"].values()]
        res = {"target": f"memory, import of {key[1]} ({ds['width']}²) by {LABELS[key[2]]}: peak RSS ≤ 4 chunks "
                         "per channel + 64 MiB",
               "threshold": f"≤ {bound / MIB:.0f} MiB ({len(ds['channels'])} × 4 × {chunk / MIB:g} MiB + 64 MiB)",
               "status": "missing", "result": "FAILED" if agg[key]["failed"] else "no value"}
        if peaks:
            peak = max(peaks)
            res["result"] = f"peak RSS {peak / MIB:.0f} MiB at {R.threads_label(key[3])}"
            res["status"] = "met" if peak <= bound else "not met"
        rows.append(res)
    return rows


def eval_targets(agg: dict, doc: dict) -> list[dict]:
    return [eval_target(agg, t) for t in TARGETS] + eval_memory(agg, doc["datasets"])


# ---------------------------------------------------------------------------------------
# IMAGES.md
# ---------------------------------------------------------------------------------------


def fmt_s(s: float) -> str:
    return f"{s:.3f}" if s < 1 else f"{s:.2f}"


def time_cell(a: dict | None, ds: dict, name: str = "time_s") -> str:
    if a is None:
        return ""
    vals = [field(r, name) for r in a["ok"].values() if field(r, name) is not None]
    if not vals:
        return f"FAILED ({len(a['failed'])})" if a["failed"] else ""
    med = statistics.median(vals)
    s = f"{fmt_s(med)} s" + (f" [{fmt_s(min(vals))}–{fmt_s(max(vals))}]" if len(vals) > 1 else "")
    s += f"<br>{ds['raw_bytes'] / med / 1e6:.0f} MB/s"
    if a["failed"]:
        s += f"<br>+{len(a['failed'])} FAILED"
    return s


def rss_cell(a: dict | None) -> str:
    if a is None:
        return ""
    vals = [field(r, "peak_rss_bytes") for r in a["ok"].values()]
    vals = [v for v in vals if v is not None]
    return f"{statistics.median(vals) / MIB:.0f}" if vals else ""


def ratio_cell(agg: dict, kind: str, ds: str, n: int, num: str, den: str, name: str) -> str:
    ratios = paired(agg, (kind, ds, num, n), (kind, ds, den, n), name)
    if not ratios:
        return ""
    s = R.fmt_x(statistics.median(ratios))
    return s + (f" [{min(ratios):.2f}–{max(ratios):.2f}]" if len(ratios) > 1 else "")


def describe(ds: dict) -> str:
    names = " ".join(c["name"] for c in ds["channels"])
    types = sorted({c["dtype"] for c in ds["channels"]}, key=[c["dtype"] for c in ds["channels"]].index)
    kind = {"exr": "OpenEXR", "tiff": "TIFF", "png": "PNG"}[ds["kind"]]
    return (f"{kind} {ds['width']} × {ds['height']}, {names} ({' + '.join(types)}), {ds['compression'].upper()}; "
            f"{ds['raw_bytes'] / MIB:.0f} MiB of pixels, file {ds['file_bytes'] / MIB:.0f} MiB")


def write_header(w, doc: dict) -> None:
    m, cfg = doc["machine"], doc["config"]
    pv = {k.lower(): v for k, v in m["versions"]["peers_venv"].items()}
    w("# Image-file benchmark results")
    w("")
    w(f"Generated by `{cfg['command']}` on {m['date_utc']} in {doc['duration_s'] / 60:.1f} min "
      f"({'quick sizes' if cfg['quick'] else 'full sizes'}; reps per case below). The benchmark: "
      "`benches/harness/README.md`, \"Image files\"; raw values: `benches/harness/work/data/images-results"
      f"{'-quick' if cfg['quick'] else ''}.json`.")
    w("")
    dirty = f" with {m['git_dirty_paths']} uncommitted paths" if m.get("git_dirty_paths") else ""
    w(f"Machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_total_bytes'] / 2**30:.1f} GiB RAM, Linux "
      f"{m['kernel']}; load average before {m['load_before']}, after {m['load_after']}. Commit "
      f"`{m['git_commit'][:12]}`{dirty}. Peers: OpenImageIO {pv.get('openimageio', '?')}, "
      f"OpenEXR {pv.get('openexr', '?')}, compressed-image {pv.get('compressed-image', '?')}, "
      f"numpy {pv.get('numpy', '?')}. Ours: {m['versions']['ours_module'].split()[0]}, {m['rustc']}.")
    w("")
    w("Thread counts: " + ", ".join(f"`{c['id']}` {'/'.join(map(str, c['threads']))} ({c['reps']} "
                                    f"rep{'s' if c['reps'] != 1 else ''})" for c in cfg["cases"]) + ".")
    w("")
    for key, (state, reason) in (doc.get("build_status") or {}).items():
        if state != "ok":
            w(f"**{key} not built:** {reason.splitlines()[0]}")
            w("")


def write_targets(w, rows: list[dict]) -> None:
    w("## Targets")
    w("")
    w("A ratio is median over reps of t(peer) / t(ours) (> 1: ours faster or smaller), per file and "
      "thread count; a target is met when every cell reaches it.")
    w("")
    w("| target | threshold | result | status |")
    w("|---|---|---|---|")
    for r in rows:
        status = {"met": "met", "not met": "**not met**", "missing": "missing"}[r["status"]]
        w(f"| {r['target']} | {r['threshold']} | {r['result']} | {status} |")
    w("")


def write_kind(w, doc: dict, agg: dict, kind: str, title: str, ratios: list[tuple]) -> None:
    cases = [c for c in doc["config"]["cases"] if c["kind"] == kind]
    if not cases:
        return
    w(f"## {title}")
    w("")
    w("Ratios (median over reps of the per-rep ratio; > 1: ours faster or smaller):")
    w("")
    w("| file | n | " + " | ".join(h for h, *_ in ratios) + " |")
    w("|---|---|" + "---|" * len(ratios))
    for c in cases:
        for n in c["threads"]:
            w(f"| {c['dataset']} | {n} | "
              + " | ".join(ratio_cell(agg, kind, c["dataset"], n, *r[1:]) for r in ratios) + " |")
    w("")
    for c in cases:
        ds = doc["datasets"][c["dataset"]]
        w(f"### {c['dataset']}" + (f" → {EXPORT_FORMATS[c['ext']]}" if kind == "export" else ""))
        w("")
        w(describe(ds) + ".")
        w("")
        counts = c["threads"]
        w("| system | " + " | ".join(f"{R.threads_label(n)}" for n in counts) + " | peak RSS MiB ("
          + " / ".join(str(n) for n in counts) + ") |")
        w("|---|" + "---|" * (len(counts) + 1))
        for s in c["systems"]:
            aggs = [agg.get((kind, c["dataset"], s, n)) for n in counts]
            w(f"| {LABELS[s]} | " + " | ".join(time_cell(a, ds) for a in aggs) + " | "
              + " / ".join(rss_cell(a) or "–" for a in aggs) + " |")
        w("")


def write_memory(w, doc: dict, agg: dict) -> None:
    cases = [c for c in doc["config"]["cases"] if c["kind"] == "memory"]
    if not cases:
        return
    w("## Memory")
    w("")
    for c in cases:
        ds = doc["datasets"][c["dataset"]]
        bound, chunk = memory_bound(ds)
        w(f"Import of {c['dataset']}: {describe(ds)}. Bound for ours in Rust and `cimg`: 4 chunks per channel + 64 MiB = "
          f"{len(ds['channels'])} × 4 × {chunk / MIB:g} MiB + 64 MiB = {bound / MIB:.0f} MiB (default 4 MiB chunks).")
        w("")
        w("| system | threads | time | peak RSS MiB | within the bound |")
        w("|---|---|---|---|---|")
        for s in c["systems"]:
            for n in c["threads"]:
                a = agg.get(("memory", c["dataset"], s, n))
                rss = rss_cell(a)
                within = ("yes" if float(rss) * MIB <= bound else "**no**") if rss else ""
                if s not in MEMORY_BOUNDED:
                    within = "(no bound)"
                w(f"| {LABELS[s]} | {n} | {time_cell(a, ds)} | {rss} | {within} |")
        w("")


def write_notes(w, doc: dict) -> None:
    w("## Notes")
    w("")
    harness = doc["machine"].get("harness_rss_bytes", 0) / MIB
    for note in NOTES:
        w("- " + note.format(harness=f"{harness:.0f}"))
    dtypes = {}
    for r in doc["runs"]:
        d = (r.get("extra") or {}).get("array_dtype")
        if d and r["system"] == "oiio":
            dtypes[r["dataset"]] = d
    if dtypes:
        w("- OpenImageIO's arrays: " + ", ".join(f"{k} {v}" for k, v in sorted(dtypes.items())) + ".")
    mismatched = [r for r in doc["runs"] if r["status"] == "ok"
                  and (r.get("extra") or {}).get("available_parallelism") not in (None, r["threads"])]
    if mismatched:
        r = mismatched[0]
        w(f"- **The Rust driver saw {r['extra']['available_parallelism']:g} CPUs at {r['threads']} threads** "
          f"({len(mismatched)} runs): its imports did not run at the thread count of the row.")
    w("")
    write_failures(w, [r for r in doc["runs"] if r["status"] == "failed"])


def write_failures(w, fails: list[dict]) -> None:
    """One row per (case, file, system, thread count) that failed: how often, the first error."""
    w(f"## Failures ({len(fails)})")
    w("")
    if not fails:
        w("None.")
        w("")
        return
    groups: dict = {}
    for r in fails:
        groups.setdefault((r["case"], r["dataset"], r["system"], r["threads"]), []).append(r)
    w("| case | file | system | n | reps | first error |")
    w("|---|---|---|---|---|---|")
    for (case, ds, system, n), rs in groups.items():
        err = R.err_summary(rs[0].get("stderr", "")).replace("|", "\\|")
        reps = ", ".join(str(r["rep"]) for r in rs)
        w(f"| {case} | {ds} | {system} | {n} | {reps} | {rs[0].get('error')}" + (f": `{err}`" if err else "") + " |")
    w("")


def write_report(doc: dict, path: str) -> list[dict]:
    """Write the report to `path`; returns the evaluated targets."""
    agg = collect(doc["runs"])
    rows = eval_targets(agg, doc)
    lines: list[str] = []
    w = lines.append
    write_header(w, doc)
    write_targets(w, rows)
    write_kind(w, doc, agg, "import", "Import", IMPORT_RATIOS)
    write_kind(w, doc, agg, "export", "Export", EXPORT_RATIOS)
    write_memory(w, doc, agg)
    write_notes(w, doc)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return rows
