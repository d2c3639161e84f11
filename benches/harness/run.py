#!/usr/bin/env python3
"""Side-by-side benchmark harness: compressed-image (ours: Rust and Python) against
compressed-image 1.0.1, python-blosc2, zarr v3 and raw c-blosc2 / memcpy.

    python3 benches/harness/run.py [--quick] [--reps N] [--only DATASET,...]
                                   [--systems SYSTEM,...] [--metrics METRIC,...]

Sets up what it needs (the peers venv, our extension in .venv, the Rust driver), generates
the datasets, runs every (rep, dataset, metric, system) as its own worker process, and writes
benches/harness/work/results.json and benches/RESULTS.md. See benches/harness/README.md.
Standard library only: runs on any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

HARNESS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HARNESS))
sys.path.insert(0, HARNESS)

import systems as S  # noqa: E402

PEERS_VENV = os.path.join(HARNESS, ".venv-peers")
PEERS_PY = os.path.join(PEERS_VENV, "bin", "python")
PEERS_REQ = os.path.join(HARNESS, "requirements-peers.txt")
OURS_VENV = os.path.join(ROOT, ".venv")
OURS_PY = os.path.join(OURS_VENV, "bin", "python")
WORK = os.path.join(HARNESS, "work")
PY_WORKER = os.path.join(HARNESS, "py_worker.py")
DRIVER_SRC = os.path.join(ROOT, "examples", "bench_driver.rs")
DRIVER_EXE = os.path.join(ROOT, "target", "release", "examples", "bench_driver")
RESULTS_JSON = os.path.join(WORK, "results.json")
RESULTS_MD = os.path.join(ROOT, "benches", "RESULTS.md")
WORKER_TIMEOUT = 600
SHUFFLE_SEED = 20240601
ITEMSIZE = {"f32": 4, "f16": 2, "u8": 1, "u32": 4}
MIB = 1024 * 1024


def log(msg: str) -> None:
    print(msg, flush=True)


def sh(cmd, env=None, cwd=ROOT, check=True, capture=False, timeout=None):
    log("  $ " + " ".join(cmd))
    return subprocess.run(
        cmd, env=env, cwd=cwd, check=check, text=True, timeout=timeout,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
    )


def out_of(cmd, env=None, cwd=ROOT) -> str:
    try:
        return subprocess.run(cmd, env=env, cwd=cwd, check=True, text=True, capture_output=True).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"unavailable ({type(e).__name__})"


def build_env() -> dict:
    """PATH with .venv/bin (cmake, maturin) and cargo; no inherited blosc thread overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOSC_")}
    path = [os.path.join(OURS_VENV, "bin")]
    cargo_bin = os.path.expanduser("~/.cargo/bin")
    if shutil.which("cargo") is None and os.path.isdir(cargo_bin):
        path.append(cargo_bin)
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    env.pop("VIRTUAL_ENV", None)
    return env


def worker_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOSC_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------


def ensure_peers() -> None:
    log("setup: peers venv " + os.path.relpath(PEERS_VENV, ROOT))
    if not os.path.exists(PEERS_PY):
        sh([sys.executable, "-m", "venv", PEERS_VENV])
    with open(PEERS_REQ, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    marker = os.path.join(PEERS_VENV, ".requirements.sha256")
    have = open(marker).read().strip() if os.path.exists(marker) else ""
    probe = subprocess.run(
        [PEERS_PY, "-c", "import compressed_image, blosc2, zarr, skimage, psutil, numpy"],
        capture_output=True, cwd=HARNESS,
    )
    if have != want or probe.returncode != 0:
        sh([PEERS_PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", PEERS_REQ])
        with open(marker, "w") as f:
            f.write(want + "\n")


def ensure_ours(env: dict) -> None:
    log("setup: our module in .venv (maturin develop --release)")
    if not os.path.exists(OURS_PY):
        sh([sys.executable, "-m", "venv", OURS_VENV])
        sh([OURS_PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "cmake", "maturin", "numpy", "psutil"])
    missing = []
    for mod, pkg in (("numpy", "numpy"), ("psutil", "psutil")):
        if subprocess.run([OURS_PY, "-c", f"import {mod}"], capture_output=True).returncode != 0:
            missing.append(pkg)
    if not os.path.exists(os.path.join(OURS_VENV, "bin", "maturin")):
        missing.append("maturin")
    if shutil.which("cmake", path=env["PATH"]) is None:
        missing.append("cmake")
    if missing:
        sh([OURS_PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing])
    e = dict(env, VIRTUAL_ENV=OURS_VENV)
    sh([os.path.join(OURS_VENV, "bin", "maturin"), "develop", "--release", "-m", "python/Cargo.toml"], env=e)


def ensure_driver(env: dict) -> tuple[str, str]:
    """('ok', '') or ('skipped'|'failed', reason) for the Rust systems."""
    if not os.path.exists(DRIVER_SRC):
        msg = "examples/bench_driver.rs does not exist yet: Rust systems skipped"
        log("setup: " + msg)
        return "skipped", msg
    log("setup: building the Rust driver (cargo build --release --example bench_driver)")
    r = sh(["cargo", "build", "--release", "--example", "bench_driver"], env=env, check=False, capture=True)
    if r.returncode != 0:
        tail = "\n".join(r.stdout.strip().splitlines()[-15:])
        log(tail)
        return "failed", "cargo build --release --example bench_driver failed:\n" + tail
    return "ok", ""


def ensure_datasets(quick: bool, only: list[str] | None) -> list[dict]:
    log("setup: datasets in " + os.path.relpath(os.path.join(WORK, "data"), ROOT))
    cmd = [PEERS_PY, os.path.join(HARNESS, "datasets.py"), "--workdir", WORK]
    if quick:
        cmd.append("--quick")
    if only:
        cmd += ["--only", ",".join(only)]
    r = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, cwd=HARNESS)
    return json.loads(r.stdout.strip().splitlines()[-1])


def warm(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(16 * MIB):
            pass


# ---------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return []


def mem_total() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pip_freeze(py: str) -> dict:
    out = out_of([py, "-m", "pip", "freeze", "--disable-pip-version-check"])
    res = {}
    for line in out.splitlines():
        if "==" in line:
            k, v = line.split("==", 1)
            res[k] = v
        elif line.strip():
            res[line.strip()] = ""
    return res


def facts(env) -> dict:
    status = out_of(["git", "status", "--porcelain"])
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": out_of(["nproc"]),
        "cpu_model": cpu_model(),
        "mem_total_bytes": mem_total(),
        "kernel": platform.release(),
        "python_harness": sys.version.split()[0],
        "git_commit": out_of(["git", "rev-parse", "HEAD"]),
        "git_dirty_paths": len([l for l in status.splitlines() if l.strip()]) if not status.startswith("unavailable") else None,
        "rustc": out_of(["rustc", "--version"], env=env),
        "cargo": out_of(["cargo", "--version"], env=env),
        "versions": {
            "peers_venv": pip_freeze(PEERS_PY),
            "ours_venv": pip_freeze(OURS_PY),
            "ours_module": out_of([OURS_PY, "-c", "import compressed_image as c; print(c.__version__, c.__file__)"], cwd=HARNESS),
        },
    }


# ---------------------------------------------------------------------------------------
# Running workers
# ---------------------------------------------------------------------------------------


def worker_cmd(system: str) -> list[str]:
    env = S.SYSTEMS[system]
    if env == "peers":
        return [PEERS_PY, PY_WORKER]
    if env == "ours":
        return [OURS_PY, PY_WORKER]
    return [DRIVER_EXE]


KEEP_IN_WORK = {"data", "cache", "tmp", "results.json"}


def sweep_work() -> list[str]:
    """Remove what a worker left at the top of the work dir (workers run one at a time, so
    nothing there is in use); returns the names, recorded with the run."""
    left = []
    for name in sorted(os.listdir(WORK)):
        if name in KEEP_IN_WORK:
            continue
        p = os.path.join(WORK, name)
        left.append(name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                os.remove(p)
            except OSError:
                pass
    return left


def run_worker(system: str, ds: dict, metric: str) -> dict:
    cmd = worker_cmd(system) + [
        "worker", "--system", system, "--data", ds["path"], "--width", str(ds["width"]),
        "--height", str(ds["height"]), "--dtype", ds["dtype"], "--metric", metric,
        "--reps", "1", "--workdir", WORK,
    ]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT, cwd=HARNESS, env=worker_env())
    except subprocess.TimeoutExpired as e:
        return {"status": "failed", "error": f"timeout after {WORKER_TIMEOUT} s", "stderr": (e.stderr or "")[-2000:] if isinstance(e.stderr, str) else "", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"status": "failed", "error": f"exit {r.returncode}", "stderr": r.stderr[-3000:], "wall_s": wall}
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    try:
        res = json.loads(lines[-1])
    except Exception:  # noqa: BLE001
        return {"status": "failed", "error": "no JSON line on stdout", "stdout": r.stdout[-1000:], "stderr": r.stderr[-2000:], "wall_s": wall}
    if res.get("system") != system or res.get("metric") != metric:
        return {"status": "failed", "error": f"worker answered for {res.get('system')}/{res.get('metric')}", "wall_s": wall}
    if "skipped" in res:
        return {"status": "skipped", "reason": res["skipped"], "wall_s": wall}
    vals = res.get("values")
    if not isinstance(vals, list) or len(vals) != 1 or not all(isinstance(v, (int, float)) for v in vals):
        return {"status": "failed", "error": f"bad values {vals!r}", "wall_s": wall}
    return {"status": "ok", "unit": res.get("unit"), "value": float(vals[0]), "extra": res.get("extra") or {}, "wall_s": wall}


def err_summary(stderr: str) -> str:
    """The telling line of a worker's stderr: a Rust panic's message or a Python exception."""
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if "panicked at" in l:
            return (lines[i + 1] if i + 1 < len(lines) else l)[:400]
    rest = [l for l in lines if not (l.startswith(("note:", "stack backtrace", "at ")) or l.split(":")[0].isdigit())]
    return rest[-1][:400] if rest else ""


def fmt_short(metric: str, rec: dict) -> str:
    if rec["status"] != "ok":
        return rec["status"].upper() if rec["status"] == "failed" else "skip"
    v = rec["value"]
    if metric == "two_threads":
        return f"{v:.2f}x"
    if metric in ("lazy_rss", "size_rewrites"):
        return f"{v / MIB:.1f}MiB"
    return fmt_ms(v) + "ms"


# ---------------------------------------------------------------------------------------
# Aggregation and report
# ---------------------------------------------------------------------------------------


# extra keys that mean the same thing in different workers (py_worker.py, bench_driver.rs)
ALIASES = {
    "after_compact_bytes": ("after_compact_bytes", "after_compact"),
    "live_bytes": ("live_bytes", "live"),
    "peak_rss_anon_bytes": ("peak_rss_anon_bytes", "peak"),
    "compressed_bytes": ("compressed_bytes",),
}


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


def fmt_num(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def collect(runs: list[dict]) -> dict:
    """(dataset, metric, system) -> {'ok': {rep: (value, extra)}, 'failed': [...], 'skipped': reason}"""
    agg: dict = {}
    for r in runs:
        k = (r["dataset"], r["metric"], r["system"])
        a = agg.setdefault(k, {"ok": {}, "failed": [], "skipped": None})
        if r["status"] == "ok":
            a["ok"][r["rep"]] = (r["value"], r.get("extra", {}))
        elif r["status"] == "failed":
            a["failed"].append(r)
        else:
            a["skipped"] = r.get("reason", "skipped")
    return agg


def cell(metric: str, a: dict | None, nbytes: int) -> str:
    if a is None:
        return ""
    vals = [v for v, _ in a["ok"].values()]
    fails = len(a["failed"])
    if not vals:
        if fails:
            return f"FAILED ({fails})"
        return "n/a" if a["skipped"] else ""
    med, lo, hi = statistics.median(vals), min(vals), max(vals)
    if metric == "two_threads":
        s = f"{med:.2f}× [{lo:.2f}–{hi:.2f}]"
    elif metric == "lazy_rss":
        s = f"{med / MIB:.1f} MiB [{lo / MIB:.1f}–{hi / MIB:.1f}]"
        peaks = [xget(e, "peak_rss_anon_bytes") for _, e in a["ok"].values() if xget(e, "peak_rss_anon_bytes")]
        if peaks:
            s += f"<br>peak {statistics.median(peaks) / MIB:.0f} MiB"
    elif metric == "size_rewrites":
        s = f"{med / MIB:.1f} MiB [{lo / MIB:.1f}–{hi / MIB:.1f}]"
        comp = [xget(e, "after_compact_bytes") for _, e in a["ok"].values() if xget(e, "after_compact_bytes") is not None]
        live = [xget(e, "live_bytes") for _, e in a["ok"].values() if xget(e, "live_bytes") is not None]
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


# Targets: (label, kind, metric, ours, peer, threshold)
#   kind "speed": per-rep ratio peer_time / ours_time >= threshold
#   kind "max_s": ours value (s) <= threshold;  kind "max_bytes": ours value <= threshold
#   kind "ratio_x": ours value (x) >= threshold;  kind "compact": after_compact ~= live
TARGETS = [
    ("read_all: cimg-file vs compressed-image-1.0.1", "speed", "read_all", "cimg-file", "compressed-image-1.0.1", 0.95),
    ("read_all: cimg-file vs blosc2-raw", "speed", "read_all", "cimg-file", "blosc2-raw", 0.90),
    ("read_all_again: cimg-file vs compressed-image-1.0.1", "speed", "read_all_again", "cimg-file", "compressed-image-1.0.1", 1.0),
    ("read_all_again: cimg-file vs blosc2-raw", "speed", "read_all_again", "cimg-file", "blosc2-raw", 0.97),
    ("decompress: cimg-file vs compressed-image-1.0.1", "speed", "decompress", "cimg-file", "compressed-image-1.0.1", 3.0),
    ("construct: cimg-file vs compressed-image-1.0.1", "speed", "construct", "cimg-file", "compressed-image-1.0.1", 1.5),
    ("rewrite: cimg-file vs compressed-image-1.0.1", "speed", "rewrite", "cimg-file", "compressed-image-1.0.1", 1.0),
    ("rewrite: cimg-file vs blosc2-frame-disk", "speed", "rewrite", "cimg-file", "blosc2-frame-disk", 3.0),
    ("random (median latency): cimg-file vs compressed-image-1.0.1", "speed", "random", "cimg-file", "compressed-image-1.0.1", 1.0),
    ("open (256-chunk mask_f32): cimg-file ≤ 0.3 ms", "max_s", "open", "cimg-file", None, 0.3e-3, "mask_f32"),
    ("open (256-chunk mask_f32): cimg-python ≤ 0.3 ms", "max_s", "open", "cimg-python", None, 0.3e-3, "mask_f32"),
    ("lazy_rss delta: cimg-file ≤ 16 MiB", "max_bytes", "lazy_rss", "cimg-file", "compressed-image-1.0.1", 16 * MIB),
    ("lazy_rss delta: cimg-python ≤ 16 MiB", "max_bytes", "lazy_rss", "cimg-python", "compressed-image-1.0.1", 16 * MIB),
    ("size after 6 rewrites + compact = live: cimg-file", "compact", "size_rewrites", "cimg-file", None, None),
    ("size after 6 rewrites + compact = live: cimg-python", "compact", "size_rewrites", "cimg-python", None, None),
    # The 1.0.1 API makes anonymous channels (`Channel(data, ...)`): compared as such.
    ("Python read_all (get_chunk loop): cimg-python-anon vs compressed-image-1.0.1", "speed", "read_all", "cimg-python-anon", "compressed-image-1.0.1", 1.0),
    ("Python rewrite (set_chunk loop): cimg-python-anon vs compressed-image-1.0.1", "speed", "rewrite", "cimg-python-anon", "compressed-image-1.0.1", 1.0),
    ("Python decompress: cimg-python-anon vs compressed-image-1.0.1", "speed", "decompress", "cimg-python-anon", "compressed-image-1.0.1", 1.0),
    ("Python construct: cimg-python-anon vs compressed-image-1.0.1", "speed", "construct", "cimg-python-anon", "compressed-image-1.0.1", 1.0),
    ("Python two_threads speed-up: cimg-python ≥ 1.6", "ratio_x", "two_threads", "cimg-python", None, 1.6),
]
COMPACT_SLACK = 64 * 1024  # bytes of headers, table and slots allowed above the live bytes
COMPACT_SLACK_FRAC = 0.01


def eval_targets(agg: dict, dataset: str | None) -> list[dict]:
    rows = []
    for label, kind, metric, ours, peer, thr, *on in TARGETS:
        row = {"target": label, "kind": kind, "threshold": thr, "status": "missing", "detail": ""}
        rows.append(row)
        if dataset is None:
            row["detail"] = "dataset not in this run"
            continue
        # A target may name its own dataset (e.g. a 256-chunk channel for `open`).
        ds = dataset
        if on:
            ds = on[0] + ("_quick" if dataset.endswith("_quick") else "")
        a = agg.get((ds, metric, ours))
        b = agg.get((ds, metric, peer)) if peer else None

        def why(x, name):
            if x is None:
                return f"{name}: not run"
            if x["failed"] and not x["ok"]:
                return f"{name}: FAILED"
            if x["skipped"] and not x["ok"]:
                return f"{name}: skipped ({x['skipped']})"
            return ""

        if a is None or not a["ok"]:
            row["detail"] = why(a, ours)
            continue
        ov = {r: v for r, (v, _) in a["ok"].items()}
        row["ours"] = statistics.median(ov.values())
        if kind == "speed":
            if b is None or not b["ok"]:
                row["detail"] = why(b, peer)
                continue
            pv = {r: v for r, (v, _) in b["ok"].items()}
            row["peer"] = statistics.median(pv.values())
            ratios = [pv[r] / ov[r] for r in ov if r in pv and ov[r] > 0]
            if not ratios:
                row["detail"] = "no rep with both values"
                continue
            row["ratio"] = (statistics.median(ratios), min(ratios), max(ratios), len(ratios))
            row["status"] = "met" if row["ratio"][0] >= thr else "not met"
        elif kind in ("max_s", "max_bytes"):
            vals = list(ov.values())
            row["range"] = (min(vals), max(vals))
            if b is not None and b["ok"]:
                row["peer"] = statistics.median(v for v, _ in b["ok"].values())
            row["status"] = "met" if row["ours"] <= thr else "not met"
        elif kind == "ratio_x":
            vals = list(ov.values())
            row["range"] = (min(vals), max(vals))
            row["status"] = "met" if row["ours"] >= thr else "not met"
        elif kind == "compact":
            over = []
            for _, e in a["ok"].values():
                c, l = xget(e, "after_compact_bytes"), xget(e, "live_bytes")
                if c is None or l is None:
                    continue
                over.append((c - l, c, l))
            if not over:
                row["detail"] = f"{ours}: extra lacks after_compact_bytes/live_bytes"
                continue
            worst = max(over)
            row["overhead"] = worst
            allowed = max(COMPACT_SLACK, COMPACT_SLACK_FRAC * worst[2])
            row["status"] = "met" if 0 <= worst[0] <= allowed else "not met"
    return rows


def target_cells(row) -> tuple[str, str, str, str]:
    """(ours, peer, result, threshold) as text."""
    kind, thr = row["kind"], row["threshold"]
    ours = peer = result = ""
    if kind == "speed":
        if "ours" in row:
            ours = fmt_ms(row["ours"]) + " ms"
        if "peer" in row:
            peer = fmt_ms(row["peer"]) + " ms"
        if "ratio" in row:
            r = row["ratio"]
            result = f"{r[0]:.2f}× [{r[1]:.2f}–{r[2]:.2f}]"
        th = f"≥ {thr:g}×"
    elif kind == "max_s":
        if "ours" in row:
            ours = fmt_ms(row["ours"]) + " ms"
            result = f"{fmt_ms(row['ours'])} ms [{fmt_ms(row['range'][0])}–{fmt_ms(row['range'][1])}]"
        th = f"≤ {thr * 1e3:g} ms"
    elif kind == "max_bytes":
        if "ours" in row:
            ours = f"{row['ours'] / MIB:.1f} MiB"
            result = f"{row['ours'] / MIB:.1f} MiB [{row['range'][0] / MIB:.1f}–{row['range'][1] / MIB:.1f}]"
        if "peer" in row:
            peer = f"{row['peer'] / MIB:.1f} MiB"
        th = f"≤ {thr / MIB:g} MiB"
    elif kind == "ratio_x":
        if "ours" in row:
            ours = f"{row['ours']:.2f}×"
            result = f"{row['ours']:.2f}× [{row['range'][0]:.2f}–{row['range'][1]:.2f}]"
        th = f"≥ {thr:g}×"
    else:
        if "overhead" in row:
            d, c, l = row["overhead"]
            ours = f"{c / MIB:.2f} MiB"
            peer = f"live {l / MIB:.2f} MiB"
            result = f"{int(d):+d} B"
        th = f"≤ live + max(64 KiB, 1 %)"
    return ours, peer, result, th


def write_report(doc: dict, path: str) -> tuple[str, list[dict]]:
    agg = collect(doc["runs"])
    m = doc["machine"]
    cfg = doc["config"]
    dsets = doc["datasets"]
    lines = []
    w = lines.append
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
    w("Every system: LZ4 level 9, byte shuffle, typesize = element size, 32 KiB blocks, chunks of whole "
      "scanlines up to 4 MiB. `read_all`, `read_all_again` and `random` on 1 thread; `construct`, "
      "`decompress` and `rewrite` with each system's best use of 2 threads. Each value is one worker process; "
      "reps are interleaved (rep → dataset → metric → systems in a shuffled order). Cells: median [min–max] "
      "over reps; MB/s = uncompressed MB (10⁶ B) per second at the median.")
    w("")
    if doc.get("rust_status", ("ok", ""))[0] != "ok":
        w(f"**Rust systems ({', '.join(s for s, e in S.SYSTEMS.items() if e == 'rust')}) not run:** "
          + doc["rust_status"][1].splitlines()[0])
        w("")

    # Targets
    tds = next((d["name"] for d in dsets if d["base"] == "render_f32"), None)
    w(f"## Targets ({tds or 'render_f32: not in this run'})")
    w("")
    w("Speed ratio = peer time / our time per rep (> 1: ours faster), median [min–max] over reps; "
      "a target is met when the median passes. \"missing\": a system failed or did not run.")
    w("")
    if cfg["quick"]:
        w("Quick sizes: a 2048² channel is only a few chunks and each value a single ~10 ms run, so these "
          "ratios are a smoke test, not a measurement.")
        w("")
    w("| target | ours | peer | result | threshold | status |")
    w("|---|---|---|---|---|---|")
    trows = eval_targets(agg, tds)
    loads = (m.get("load_before") or [0])[:1] + (m.get("load_after") or [0])[:1]
    try:
        busy = max(loads) if max(loads) > 0.5 * float(m["nproc"]) else None
    except (TypeError, ValueError):
        busy = None
    for r in trows:
        ours, peer, result, th = target_cells(r)
        status = {"met": "met", "not met": "**not met**", "missing": "missing"}[r["status"]]
        if r["kind"] == "ratio_x" and r["status"] == "not met" and busy:
            status += f" (load average {busy} on {m['nproc']} CPUs: no idle second core)"
        if r["status"] == "missing" and r["detail"]:
            status += f" ({r['detail']})"
        w(f"| {r['target']} | {ours} | {peer} | {result} | {th} | {status} |")
    w("")

    # Per dataset tables
    for d in dsets:
        name = d["name"]
        nbytes = d["width"] * d["height"] * ITEMSIZE[d["dtype"]]
        w(f"## {name}: {d['width']}×{d['height']} {d['dtype']} ({nbytes / MIB:.0f} MiB)")
        w("")
        syss = [s for s in cfg["systems"] if any(k[0] == name and k[2] == s for k in agg)]
        if not syss:
            w("(no results)")
            w("")
            continue
        w("| metric | " + " | ".join(syss) + " |")
        w("|---|" + "---|" * len(syss))
        for metric in cfg["metrics"]:
            if not any((name, metric, s) in agg for s in syss):
                continue
            w(f"| {metric} | " + " | ".join(cell(metric, agg.get((name, metric, s)), nbytes) for s in syss) + " |")
        # compression ratio from construct extras
        ratios = []
        for s in syss:
            a = agg.get((name, "construct", s))
            cb = [xget(e, "compressed_bytes") for _, e in a["ok"].values() if xget(e, "compressed_bytes")] if a else []
            ratios.append(f"{nbytes / statistics.median(cb):.2f}" if cb else "")
        if any(ratios):
            w("| ratio (raw / compressed) | " + " | ".join(ratios) + " |")
        w("")

    # Notes and failures
    w("## Notes")
    w("")
    w("- `construct` of file systems includes making the data reach the OS: ours (`cimg-python`, `cimg-file`) "
      "includes `sync()` (fdatasync; `extra.no_sync_s` in results.json is the time without it); blosc2 frames "
      "include closing the frame; zarr writes each chunk file before returning. Nobody else fsyncs.")
    w("- `read_all` for file systems opens a fresh handle (untimed) on a file built once per run; ours verifies "
      "each blob's CRC-32 on the first read through a handle, so `read_all` includes it and `read_all_again` does not.")
    w("- `random`: 64 single-chunk reads at seeded indices on a fresh handle, value = median latency.")
    w("- `open`: median of 50 × (open + read shape/chunk count); closing is not timed.")
    w("- `lazy_rss`: a fresh process; RssAnon after imports, then a lazy 16384×16384 f32 channel of zeros, every "
      "10th of its 256 chunks set from render-like rows (the caller's array is freed before each sample); "
      "value = peak RssAnon − baseline. Run under one dataset only (it makes its own data).")
    w("- `two_threads`: two channels from the same data, each read whole by its own Python thread vs both by one "
      "thread (after a warm pass); value = t_one / t_two, median of 3 alternations in the process.")
    w("- `size_rewrites`: file size after creating the file and rewriting every chunk 6 times; then compaction "
      "(ours `compact()`; blosc2 has none, so `to_cframe()` into a new file; zarr has no dead space).")
    w("- `memcpy`, `blosc2-raw`, `cimg-file`, `cimg-anon` are measured by `examples/bench_driver.rs` (its "
      "doc comment says how); the other systems by `benches/harness/py_worker.py`.")
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
        key = (r["system"], r["metric"], r["dataset"], r.get("error"))
        if key in seen:
            continue
        seen.add(key)
        err = err_summary(r.get("stderr", ""))
        w(f"- {r['system']} / {r['metric']} / {r['dataset']} (rep {r['rep']}): {r.get('error')}"
          + (f": `{err}`" if err else ""))
    w("")
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text)
    return text, trows


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


README_MD = os.path.join(ROOT, "README.md")
README_START, README_END = "<!-- targets:start -->", "<!-- targets:end -->"


def cfg_quick(doc: dict) -> bool:
    return bool(doc["config"]["quick"])


def update_readme(report: str) -> None:
    """Copy the run's machine line and Targets table into README.md between its markers."""
    lines = report.splitlines()
    keep = [l for l in lines if l.startswith(("Generated by", "Machine:", "Peers:"))]
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("| target |"))
    except StopIteration:
        return
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    block = "\n\n".join(keep) + "\n\n" + "\n".join(lines[start:end])
    block = block.replace("`benches/harness/work/results.json`", "`benches/harness/work/results.json` (not committed)")
    with open(README_MD) as f:
        text = f.read()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with open(README_MD, "w") as f:
        f.write(head + README_START + "\n" + block + "\n" + README_END + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2048² datasets (4096² mask): a smoke run")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="", help="datasets, e.g. render_f32,mask_f32")
    ap.add_argument("--systems", default="", help="systems, comma separated (default: all)")
    ap.add_argument("--metrics", default="", help="metrics, comma separated (default: all)")
    ap.add_argument("--output", default=RESULTS_MD, help="report path (default benches/RESULTS.md)")
    a = ap.parse_args()
    t_start = time.perf_counter()

    only = [s.removesuffix("_quick") for s in a.only.split(",") if s] or None
    systems = [s for s in a.systems.split(",") if s] or list(S.SYSTEMS)
    metrics = [s for s in a.metrics.split(",") if s] or list(S.METRICS)
    for s in systems:
        if s not in S.SYSTEMS:
            ap.error(f"unknown system {s!r}; known: {', '.join(S.SYSTEMS)}")
    for mt in metrics:
        if mt not in S.METRICS:
            ap.error(f"unknown metric {mt!r}; known: {', '.join(S.METRICS)}")

    env = build_env()
    os.makedirs(WORK, exist_ok=True)
    ensure_peers()  # always: the datasets are generated there
    if any(S.SYSTEMS[s] == "ours" for s in systems):
        ensure_ours(env)
    rust_status = ("ok", "")
    if any(S.SYSTEMS[s] == "rust" for s in systems):
        rust_status = ensure_driver(env)
    datasets = ensure_datasets(a.quick, only)
    if not datasets:
        ap.error("no dataset selected")
    sweep_work()
    for sub in ("cache", "tmp"):
        shutil.rmtree(os.path.join(WORK, sub), ignore_errors=True)
        os.makedirs(os.path.join(WORK, sub))

    machine = facts(env)
    machine["load_before"] = loadavg()
    lazy_ds = next((d["name"] for d in datasets if d["base"] == "render_f32"), datasets[0]["name"])
    rng = random.Random(SHUFFLE_SEED)
    runs: list[dict] = []
    skip_cache: dict = {}
    log(f"run: {a.reps} rep(s) × {len(datasets)} dataset(s) × {len(metrics)} metric(s) × {len(systems)} system(s)")
    for rep in range(1, a.reps + 1):
        for ds in datasets:
            warm(ds["path"])
            for metric in metrics:
                if metric in S.DATASET_INDEPENDENT and ds["name"] != lazy_ds:
                    continue
                order = list(systems)
                rng.shuffle(order)
                shown = []
                for system in order:
                    base = {"rep": rep, "dataset": ds["name"], "metric": metric, "system": system}
                    env_kind = S.SYSTEMS[system]
                    if env_kind in ("peers", "ours"):
                        reason = S.py_skip_reason(system, metric)
                        if reason:
                            runs.append(dict(base, status="skipped", reason=reason))
                            continue
                    if env_kind == "rust" and rust_status[0] != "ok":
                        runs.append(dict(base, status=rust_status[0], reason=rust_status[1].splitlines()[0],
                                         error=rust_status[1].splitlines()[0]))
                        continue
                    key = (system, metric, ds["name"])
                    if key in skip_cache:
                        runs.append(dict(base, status="skipped", reason=skip_cache[key]))
                        continue
                    rec = run_worker(system, ds, metric)
                    left = sweep_work()
                    if left:
                        rec["left_in_workdir"] = left
                    if rec["status"] == "skipped":
                        skip_cache[key] = rec["reason"]
                    runs.append(dict(base, **rec))
                    if rec["status"] == "failed":
                        log(f"  FAILED {system} {metric} {ds['name']}: {rec.get('error')}: {err_summary(rec.get('stderr', ''))}")
                    if rec["status"] != "skipped":
                        shown.append(f"{system} {fmt_short(metric, rec)}")
                log(f"rep {rep}/{a.reps} {ds['name']} {metric}: " + ", ".join(shown))
    machine["load_after"] = loadavg()
    duration = time.perf_counter() - t_start
    cmd = "python3 benches/harness/run.py" + "".join(
        f" {x}" for x in sys.argv[1:])
    doc = {
        "config": {"command": cmd, "quick": a.quick, "reps": a.reps, "systems": systems, "metrics": metrics,
                   "worker_timeout_s": WORKER_TIMEOUT, "shuffle_seed": SHUFFLE_SEED},
        "machine": machine,
        "datasets": datasets,
        "rust_status": list(rust_status),
        "duration_s": duration,
        "worker_wall_s_total": sum(r.get("wall_s", 0) for r in runs),
        "runs": runs,
    }
    with open(RESULTS_JSON, "w") as f:
        json.dump(doc, f, indent=1)
    report, trows = write_report(doc, a.output)
    if not cfg_quick(doc) and a.output == RESULTS_MD:
        update_readme(report)

    # compact stdout summary
    log("")
    log(f"== Targets ({next((d['name'] for d in datasets if d['base'] == 'render_f32'), 'render_f32 not run')}) ==")
    for r in trows:
        ours, peer, result, th = target_cells(r)
        log(f"  {r['status']:8} {r['target']}: {result or ours or r['detail']} (threshold {th})")
    nfail = sum(1 for r in runs if r["status"] == "failed")
    nok = sum(1 for r in runs if r["status"] == "ok")
    log(f"== {nok} values, {nfail} failures, {duration / 60:.1f} min; results: {os.path.relpath(RESULTS_JSON, ROOT)}, "
        f"report: {os.path.relpath(a.output, ROOT)} ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
