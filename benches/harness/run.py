#!/usr/bin/env python3
"""Side-by-side benchmark harness: compressed-image (ours: Rust and Python) against
compressed-image 1.0.1, python-blosc2, zarr v3 and raw c-blosc2 / memcpy, at equal thread counts.

    python3 benches/harness/run.py [--quick] [--reps N] [--only DATASET,...] [--threads 1,all]
                                   [--systems SYSTEM,...] [--metrics METRIC,...] [--output PATH]

Sets up what it needs (the peers venv, our extension in .venv, the Rust driver), generates
the datasets, runs every (rep, dataset, metric, thread count, system) as its own worker process
limited to that many CPUs, and writes benches/harness/work/results.json and the report
(report.py: benches/RESULTS.md, or benches/harness/work/RESULTS-quick.md for --quick). See
benches/harness/README.md.
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

import report as R  # noqa: E402
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
QUICK_MD = os.path.join(WORK, "RESULTS-quick.md")
README_MD = os.path.join(ROOT, "README.md")
WORKER_TIMEOUT = 600
SHUFFLE_SEED = 20240601
MIB = 1024 * 1024
BELOW_SHOWN = 30  # equal-thread cells below 1× listed on stdout, worst first


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


KEEP_IN_WORK = {"data", "cache", "tmp", "results.json", os.path.basename(QUICK_MD)}


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


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where affinity is not supported)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def limit_to(cpus: list[int]):
    """A preexec_fn limiting the worker to `cpus`, or None when that is every CPU already."""
    if cpus == allowed_cpus() or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def failed(error: str, wall: float, **more) -> dict:
    return dict({"status": "failed", "error": error, "wall_s": wall}, **more)


def run_worker(system: str, ds: dict, metric: str, threads: int) -> dict:
    """One worker process for one value of `metric` at `threads` threads, on `threads` CPUs.
    Returns the run's record; `also` holds the values of the metrics measured on the way
    (the durable variants)."""
    cmd = worker_cmd(system) + [
        "worker", "--system", system, "--data", ds["path"], "--width", str(ds["width"]),
        "--height", str(ds["height"]), "--dtype", ds["dtype"], "--metric", metric,
        "--threads", str(threads), "--reps", "1", "--workdir", WORK,
    ]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT, cwd=HARNESS, env=worker_env(),
                           preexec_fn=limit_to(allowed_cpus()[:threads]))
    except subprocess.TimeoutExpired as e:
        return failed(f"timeout after {WORKER_TIMEOUT} s", time.perf_counter() - t0,
                      stderr=(e.stderr or "")[-2000:] if isinstance(e.stderr, str) else "")
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return failed(f"exit {r.returncode}", wall, stderr=r.stderr[-3000:])
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    try:
        res = json.loads(lines[-1])
    except Exception:  # noqa: BLE001
        return failed("no JSON line on stdout", wall, stdout=r.stdout[-1000:], stderr=r.stderr[-2000:])
    if res.get("system") != system or res.get("metric") != metric:
        return failed(f"worker answered for {res.get('system')}/{res.get('metric')}", wall)
    if "skipped" in res:
        return {"status": "skipped", "reason": res["skipped"], "wall_s": wall}
    if res.get("threads") != threads:
        return failed(f"worker ran at {res.get('threads')!r} threads, not {threads}", wall)

    def one(vals):
        ok = isinstance(vals, list) and len(vals) == 1 and all(isinstance(v, (int, float)) for v in vals)
        return float(vals[0]) if ok else None

    value = one(res.get("values"))
    if value is None:
        return failed(f"bad values {res.get('values')!r}", wall)
    also = {}
    for name, vals in (res.get("also") or {}).items():
        if S.DURABLE_OF.get(name) != metric or one(vals) is None:
            return failed(f"bad also {name!r}: {vals!r}", wall)
        also[name] = one(vals)
    return {"status": "ok", "unit": res.get("unit"), "value": value, "extra": res.get("extra") or {}, "also": also,
            "wall_s": wall}


def fmt_short(metric: str, rec: dict) -> str:
    if rec["status"] != "ok":
        return rec["status"].upper() if rec["status"] == "failed" else "skip"
    v = rec["value"]
    if metric == "two_threads":
        return f"{v:.2f}x"
    if metric in ("lazy_rss", "size_rewrites"):
        return f"{v / MIB:.1f}MiB"
    return R.fmt_ms(v) + "ms"


def parse_threads(spec: str, all_cpus: int) -> list[int]:
    """`--threads`: comma-separated counts, `all` = every CPU this process may use."""
    counts = set()
    for part in spec.split(","):
        part = part.strip()
        n = all_cpus if part == "all" else int(part)
        if not 1 <= n <= all_cpus:
            raise ValueError(f"thread count {part!r} is not between 1 and {all_cpus} (the CPUs this process may use)")
        counts.add(n)
    return sorted(counts)


def run_all(a, systems: list[str], metrics: list[str], counts: list[int], datasets: list[dict], rust_status) -> list[dict]:
    """Every (rep, dataset, metric, thread count, system) as its own worker process."""
    all_cpus = len(allowed_cpus())
    lazy_ds = next((d["name"] for d in datasets if d["base"] == "render_f32"), datasets[0]["name"])
    worker_metrics = [m for m in S.WORKER_METRICS if m in metrics or any(
        S.DURABLE_OF.get(d) == m for d in metrics)]
    rng = random.Random(SHUFFLE_SEED)
    runs: list[dict] = []
    skip_cache: dict = {}
    for rep in range(1, a.reps + 1):
        for ds in datasets:
            warm(ds["path"])
            for metric in worker_metrics:
                if metric in S.DATASET_INDEPENDENT and ds["name"] != lazy_ds:
                    continue
                # the records this worker metric yields: itself and its durable variants
                names = [m for m in metrics if m == metric or S.DURABLE_OF.get(m) == metric]
                per_n = {n: [s for s in systems if n in S.thread_counts(metric, s, counts, all_cpus)]
                         for n in sorted({n for s in systems for n in S.thread_counts(metric, s, counts, all_cpus)})}
                for n, syss in per_n.items():
                    order = list(syss)
                    rng.shuffle(order)
                    shown = []
                    for system in order:
                        base = {"rep": rep, "dataset": ds["name"], "system": system, "threads": n}
                        rec = measure(system, ds, metric, n, rust_status, skip_cache)
                        for name in names:
                            runs.append(dict(base, metric=name, **record_for(name, metric, rec)))
                        if rec["status"] == "failed":
                            log(f"  FAILED {system} {metric} {ds['name']} n={n}: {rec.get('error')}: "
                                f"{R.err_summary(rec.get('stderr', ''))}")
                        if rec["status"] != "skipped":
                            shown.append(f"{system} {fmt_short(metric, rec)}")
                    log(f"rep {rep}/{a.reps} {ds['name']} {metric} n={n}: " + ", ".join(shown))
    return runs


def measure(system: str, ds: dict, metric: str, n: int, rust_status, skip_cache: dict) -> dict:
    """The record of one worker run, or why it was not run."""
    env_kind = S.SYSTEMS[system]
    if env_kind in ("peers", "ours"):
        reason = S.py_skip_reason(system, metric)
        if reason:
            return {"status": "skipped", "reason": reason}
    if env_kind == "rust" and rust_status[0] != "ok":
        first = rust_status[1].splitlines()[0]
        return {"status": rust_status[0], "reason": first, "error": first}
    key = (system, metric, ds["name"])
    if key in skip_cache:
        return {"status": "skipped", "reason": skip_cache[key]}
    rec = run_worker(system, ds, metric, n)
    left = sweep_work()
    if left:
        rec["left_in_workdir"] = left
    if rec["status"] == "skipped":
        skip_cache[key] = rec["reason"]
    return rec


def record_for(name: str, metric: str, rec: dict) -> dict:
    """The part of worker record `rec` (of `metric`) that belongs to metric `name`: the
    record itself, or for a durable variant its value from `also`."""
    rec = dict(rec)
    also = rec.pop("also", {})
    if name == metric or rec["status"] != "ok":
        return rec
    if name not in also:
        return {"status": "skipped", "reason": "no file: no durable variant"}
    # the worker's wall time and leftovers stay with the base metric's record
    return {"status": "ok", "unit": rec["unit"], "value": also[name], "extra": {}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2048² datasets (4096² mask): a smoke run")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="", help="datasets, e.g. render_f32,mask_f32")
    ap.add_argument("--systems", default="", help="systems, comma separated (default: all)")
    ap.add_argument("--metrics", default="", help="metrics, comma separated (default: all)")
    ap.add_argument("--threads", default="1,all", help="thread counts, comma separated; all = every CPU (default 1,all)")
    ap.add_argument("--output", default=None,
                    help=f"report path (default {os.path.relpath(RESULTS_MD, ROOT)}; "
                         f"with --quick {os.path.relpath(QUICK_MD, ROOT)})")
    ap.add_argument("--report-only", action="store_true",
                    help=f"rewrite the report from {os.path.relpath(RESULTS_JSON, ROOT)} without running anything")
    a = ap.parse_args()
    t_start = time.perf_counter()
    if a.report_only:
        with open(RESULTS_JSON) as f:
            doc = json.load(f)
        return finish(doc, a.output or (QUICK_MD if doc["config"]["quick"] else RESULTS_MD))
    output = a.output or (QUICK_MD if a.quick else RESULTS_MD)

    only = [s.removesuffix("_quick") for s in a.only.split(",") if s] or None
    systems = [s for s in a.systems.split(",") if s] or list(S.SYSTEMS)
    metrics = [s for s in a.metrics.split(",") if s] or list(S.METRICS)
    for s in systems:
        if s not in S.SYSTEMS:
            ap.error(f"unknown system {s!r}; known: {', '.join(S.SYSTEMS)}")
    for mt in metrics:
        if mt not in S.METRICS:
            ap.error(f"unknown metric {mt!r}; known: {', '.join(S.METRICS)}")
    all_cpus = len(allowed_cpus())
    try:
        counts = parse_threads(a.threads, all_cpus)
    except ValueError as e:
        ap.error(f"--threads: {e}")

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
    machine["allowed_cpus"] = allowed_cpus()
    log(f"run: {a.reps} rep(s) × {len(datasets)} dataset(s) × {len(metrics)} metric(s) × {len(systems)} system(s) "
        f"at {', '.join(map(str, counts))} thread(s)")
    runs = run_all(a, systems, metrics, counts, datasets, rust_status)
    machine["load_after"] = loadavg()
    duration = time.perf_counter() - t_start
    cmd = "python3 benches/harness/run.py" + "".join(f" {x}" for x in sys.argv[1:])
    doc = {
        "config": {"command": cmd, "quick": a.quick, "reps": a.reps, "systems": systems, "metrics": metrics,
                   "threads": counts, "all_cpus": all_cpus,
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
    return finish(doc, output)


def finish(doc: dict, output: str) -> int:
    """Write the report and print the summary."""
    text, rows = R.write_report(doc, output)
    # Only a full run with the default report refreshes the README's targets block.
    if not doc["config"]["quick"] and output == RESULTS_MD:
        R.update_readme(text, README_MD)

    # compact stdout summary
    log("")
    log("== Targets ==")
    for r in rows:
        log(f"  {r['status']:8} {r['target']}: {r.get('result') or r['detail']} (threshold {r['threshold']})")
    log(R.summary_line(rows))
    below = [(c["median"], r["peer"], R.cell_name(c)) for r in rows if r["kind"] == "equal"
             for c in r["cells"] if c.get("median", 1.0) < 1.0]
    shown = sorted(below)[:BELOW_SHOWN]
    for med, peer, name in shown:
        log(f"  {R.fmt_x(med)} vs {peer}: {name}")
    if len(below) > len(shown):
        log(f"  ... {len(below) - len(shown)} more below 1× in the report's Equal-thread ratios")
    nfail = sum(1 for r in doc["runs"] if r["status"] == "failed")
    nok = sum(1 for r in doc["runs"] if r["status"] == "ok")
    log(f"== {nok} values, {nfail} failures, {doc['duration_s'] / 60:.1f} min; results: {os.path.relpath(RESULTS_JSON, ROOT)}, "
        f"report: {os.path.relpath(output, ROOT)} ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
