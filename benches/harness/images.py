#!/usr/bin/env python3
"""Image-file benchmark: importing OpenEXR, TIFF and PNG files into compressed images and
exporting them, ours (Rust `AnyImage::read` / `write`, the `cimg` tool, the Python module)
against OpenImageIO's wheel, compressed-image 1.0.1 (whose `Image.read` reads through
OpenImageIO) and the `exr` crate alone, at equal thread counts, with each process's peak RSS.

    python3 benches/harness/images.py [--quick] [--reps N] [--threads 1,all] [--cases NAME,...]
                                      [--systems NAME,...] [--output PATH] [--report-only | --setup-only]

Sets up what it needs (the peers venv, our extension in .venv, the Rust driver and `cimg`),
generates the image files once (images_data.py), runs every (rep, case, thread count, system)
as its own process limited to that many CPUs, and writes the raw results to
benches/harness/work/data/images-results.json and the report (images_report.py) to
benches/IMAGES.md (with --quick: benches/harness/work/data/IMAGES-quick.md). See
benches/harness/README.md, "Image files". Standard library only: runs on any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HARNESS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HARNESS)

import images_report as IR  # noqa: E402
import run as H  # noqa: E402

# run.py empties everything at the top of the work dir but data/, cache/ and tmp/ at the start
# of its runs: the image files and the results live under data/ to stay.
DATA = os.path.join(H.WORK, "data")
SCRATCH = os.path.join(H.WORK, "tmp", "images")
CIMG_EXE = os.path.join(H.ROOT, "target", "release", "cimg")
IMAGES_WORKER = os.path.join(HARNESS, "images_worker.py")
IMAGES_DATA = os.path.join(HARNESS, "images_data.py")
IMAGES_MD = os.path.join(H.ROOT, "benches", "IMAGES.md")
TIMEOUT = 900
SHUFFLE_SEED = 20241202


def own_rss() -> int:
    """This process's resident memory: what a forked worker starts with."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def results_json(quick: bool) -> str:
    return os.path.join(DATA, "images-results-quick.json" if quick else "images-results.json")


def quick_md() -> str:
    return os.path.join(DATA, "IMAGES-quick.md")


# ---------------------------------------------------------------------------------------
# Systems and cases
# ---------------------------------------------------------------------------------------

# system -> (runner, what it is given): "driver" runs `bench_driver image --op OP`, "cimg" runs
# `cimg --quiet SUBCOMMAND`, "ours"/"peers" run images_worker.py `--system S` in .venv / the
# peers venv. `out` is the extension of the file the system writes (None: nothing written;
# "image" the export's format).
SYSTEMS = {
    "exr-crate": {"runner": "driver", "arg": "exr-decode", "out": None},
    "rust-anon": {"runner": "driver", "arg": "import-anon", "out": None},
    "rust-file": {"runner": "driver", "arg": "import-file", "out": "cimg"},
    "cimg-import": {"runner": "cimg", "arg": "import", "out": "cimg"},
    "py-read": {"runner": "ours", "arg": "ours-read", "out": None},
    "py-native": {"runner": "ours", "arg": "ours-native", "out": None},
    "py-native-file": {"runner": "ours", "arg": "ours-native-file", "out": "cimg"},
    "oiio": {"runner": "peers", "arg": "oiio-read", "out": None},
    "original": {"runner": "peers", "arg": "ci101-read", "out": None},
    "rust-write": {"runner": "driver", "arg": "export", "out": "image"},
    "cimg-export": {"runner": "cimg", "arg": "export", "out": "image"},
    "oiio-write": {"runner": "peers", "arg": "oiio-write", "out": "image"},
}
IMPORT_SYSTEMS = ["exr-crate", "rust-anon", "rust-file", "cimg-import", "py-read", "py-native", "py-native-file",
                  "oiio", "original"]
EXPORT_SYSTEMS = ["rust-write", "cimg-export", "oiio-write"]
MEMORY_SYSTEMS = ["rust-file", "cimg-import", "py-native-file", "oiio"]

IMPORT_DATASETS = ["exr-rgba-half-zip", "exr-rgba-half-piz", "exr-8ch-zip", "exr-8ch-piz", "tiff-rgb-u16",
                   "png-rgba-u8"]
# dataset exported -> extension of the exported file (the format; OpenEXR as ZIP)
EXPORT_DATASETS = {"exr-rgba-half-zip": "exr", "exr-8ch-zip": "exr", "tiff-rgb-u16": "tif", "png-rgba-u8": "png"}
MEMORY_DATASET = "exr-rgba-half-zip-16k"
# Cases the full-size run measures at every CPU only (not at 1 thread), to keep it near 20
# minutes on 2 CPUs: the PIZ variants of the imports and the exports but the first (the PNG
# encoders of all three systems are single-threaded anyway, and slow).
ALL_CPUS_ONLY = {("import", "exr-rgba-half-piz"), ("import", "exr-8ch-piz"), ("export", "exr-8ch-zip"),
                 ("export", "tiff-rgb-u16"), ("export", "png-rgba-u8")}


def applies(system: str, ds: dict) -> bool:
    """Whether `system` has something to measure on dataset `ds`."""
    if system == "exr-crate":
        return ds["kind"] == "exr"
    if system == "py-native":
        # only where it differs from `Image.read`: channels of different types
        return len({c["dtype"] for c in ds["channels"]}) > 1
    return True


def selected_cases(a) -> list[dict]:
    """The cases `--cases` selects (default: all): kind, dataset and the systems that may run."""
    cases = [{"kind": "import", "dataset": name, "systems": IMPORT_SYSTEMS} for name in IMPORT_DATASETS]
    cases += [{"kind": "export", "dataset": name, "systems": EXPORT_SYSTEMS, "ext": ext}
              for name, ext in EXPORT_DATASETS.items()]
    cases.append({"kind": "memory", "dataset": MEMORY_DATASET, "systems": MEMORY_SYSTEMS})
    wanted = [c for c in a.cases.split(",") if c]
    for c in cases:
        c["id"] = f"{c['kind']}:{c['dataset']}"
    return [c for c in cases if not wanted or any(w in (c["id"], c["kind"], c["dataset"]) for w in wanted)]


def plan(a, cases: list[dict], datasets: dict, counts: list[int], all_cpus: int) -> list[dict]:
    """The cases to run, each with its systems (those of `--systems` that apply to its file),
    thread counts and reps."""
    wanted_systems = [s for s in a.systems.split(",") if s]
    out = []
    for c in cases:
        ds = datasets[c["dataset"]]
        systems = [s for s in c["systems"] if applies(s, ds) and (not wanted_systems or s in wanted_systems)]
        if c["kind"] == "memory":
            threads, reps = [all_cpus], 1  # one peak per system, with every CPU (most bands in flight)
        elif not a.quick and (c["kind"], c["dataset"]) in ALL_CPUS_ONLY:
            threads, reps = [n for n in counts if n == all_cpus], a.reps
        else:
            threads, reps = counts, a.reps
        if systems and threads:
            out.append(dict(c, systems=systems, threads=threads, reps=reps))
    return out


# ---------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------


def ensure_peer_image_packages() -> None:
    """The image packages of the peers venv (run.py's set-up checks only its own)."""
    probe = [H.PEERS_PY, "-c", "import OpenImageIO, OpenEXR, tifffile, PIL, compressed_image"]
    if subprocess.run(probe, capture_output=True, cwd=HARNESS).returncode != 0:
        H.sh([H.PEERS_PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", H.PEERS_REQ])
        r = subprocess.run(probe, capture_output=True, text=True, cwd=HARNESS)
        if r.returncode != 0:
            sys.exit("the peers venv cannot import its image packages:\n" + r.stderr)


def ensure_cimg(env: dict) -> tuple[str, str]:
    H.log("setup: building cimg (cargo build --release -p cimg)")
    r = H.sh(["cargo", "build", "--release", "-p", "cimg"], env=env, check=False, capture=True)
    if r.returncode != 0:
        tail = "\n".join(r.stdout.strip().splitlines()[-15:])
        H.log(tail)
        return "failed", "cargo build --release -p cimg failed:\n" + tail
    return "ok", ""


def ensure_datasets(quick: bool, names: list[str]) -> dict:
    H.log("setup: image files in " + os.path.relpath(DATA, H.ROOT))
    cmd = [H.PEERS_PY, IMAGES_DATA, "--workdir", DATA, "--only", ",".join(names)]
    if quick:
        cmd.append("--quick")
    r = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, cwd=HARNESS)
    return {d["name"]: d for d in json.loads(r.stdout.strip().splitlines()[-1])}


# ---------------------------------------------------------------------------------------
# Running one process
# ---------------------------------------------------------------------------------------


def run_measured(cmd: list[str], cpus: list[int]) -> dict:
    """Run `cmd` on `cpus` to its end: exit code, wall time, its output, and its peak resident
    memory from wait4 (ru_maxrss: the largest RSS the process reached; at least the RSS it
    inherited at fork, which is this small harness's own)."""
    killed = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        # Always fork (a preexec_fn does): a vfork'd child would inherit this process's peak.
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=HARNESS, env=H.worker_env(),
                                preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        timer = threading.Timer(TIMEOUT, lambda: (killed.append(True), proc.kill()))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            timer.join()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"rc": proc.returncode, "wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024,
                "stdout": out.read(), "stderr": err.read(), "timed_out": bool(killed)}


def command(system: str, case: dict, ds: dict, n: int, inputs: dict, output: str | None) -> list[str]:
    spec = SYSTEMS[system]
    source = inputs[ds["name"]] if case["kind"] == "export" and spec["runner"] != "peers" else ds["path"]
    if spec["runner"] == "driver":
        cmd = [H.DRIVER_EXE, "image", "--op", spec["arg"], "--input", source, "--threads", str(n)]
        return cmd + (["--output", output] if output else [])
    if spec["runner"] == "cimg":
        return [CIMG_EXE, "--quiet", spec["arg"], source, output]
    py = H.OURS_PY if spec["runner"] == "ours" else H.PEERS_PY
    cmd = [py, IMAGES_WORKER, "--system", spec["arg"], "--input", source, "--threads", str(n),
           "--dtype", ds["read_dtype"]]
    return cmd + (["--output", output] if output else [])


def measure(system: str, case: dict, ds: dict, n: int, inputs: dict) -> dict:
    """One process of `system` on `case` at `n` threads: its record."""
    spec = SYSTEMS[system]
    if case["kind"] == "export" and spec["runner"] != "peers" and ds["name"] not in inputs:
        return {"status": "failed", "error": "no .cimg input to export (the Rust driver did not build)"}
    os.makedirs(SCRATCH, exist_ok=True)
    output = None
    if spec["out"]:
        ext = case["ext"] if spec["out"] == "image" else spec["out"]
        output = os.path.join(SCRATCH, f"{system}.{ext}")
    cpus = H.allowed_cpus()[:n]
    r = run_measured(command(system, case, ds, n, inputs, output), cpus)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    rec = {"wall_s": r["wall_s"], "peak_rss_bytes": r["peak_rss_bytes"]}
    if r["timed_out"]:
        return dict(rec, status="failed", error=f"timeout after {TIMEOUT} s", stderr=r["stderr"][-3000:])
    if r["rc"] != 0:
        return dict(rec, status="failed", error=f"exit {r['rc']}", stderr=r["stderr"][-3000:])
    if spec["runner"] == "cimg":
        # The tool's own time is its process's: start, the library call, its report, exit.
        return dict(rec, status="ok", time_s=r["wall_s"], extra={"stdout": r["stdout"].strip()[-500:]})
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    try:
        res = json.loads(lines[-1])
        seconds = float(res["seconds"])
    except (IndexError, KeyError, TypeError, ValueError):
        return dict(rec, status="failed", error="no JSON line with seconds on stdout",
                    stdout=r["stdout"][-1000:], stderr=r["stderr"][-2000:])
    if res.get("threads") != n:
        return dict(rec, status="failed", error=f"ran at {res.get('threads')!r} threads, not {n}")
    return dict(rec, status="ok", time_s=seconds, extra=res.get("extra") or {})


def prepare_export_inputs(cases: list[dict], datasets: dict, rust_ok: bool) -> dict:
    """dataset -> a .cimg import of it (default settings), the input of the exports of ours."""
    inputs = {}
    directory = os.path.join(H.WORK, "tmp", "images-inputs")
    for c in cases:
        if c["kind"] != "export" or not rust_ok:
            continue
        ds = datasets[c["dataset"]]
        path = os.path.join(directory, ds["name"] + ".cimg")
        if os.path.exists(path):
            inputs[ds["name"]] = path
            continue
        os.makedirs(directory, exist_ok=True)
        H.log(f"setup: export input {os.path.relpath(path, H.ROOT)}")
        r = subprocess.run([H.DRIVER_EXE, "image", "--op", "import-file", "--input", ds["path"], "--output", path,
                            "--threads", str(len(H.allowed_cpus()))], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cannot import {ds['path']} for the exports: {r.stderr}")
        inputs[ds["name"]] = path
    return inputs


def unavailable(system: str, status: dict) -> str | None:
    """Why `system` cannot run (its runner failed to build), or None."""
    runner = SYSTEMS[system]["runner"]
    state, reason = status.get(runner, ("ok", ""))
    return None if state == "ok" else reason.splitlines()[0]


def run_cases(cases: list[dict], datasets: dict, inputs: dict, status: dict) -> list[dict]:
    """Every (rep, case, thread count, system), reps outermost, systems in a shuffled order."""
    rng = random.Random(SHUFFLE_SEED)
    runs = []
    for rep in range(1, max(c["reps"] for c in cases) + 1):
        for c in cases:
            if rep > c["reps"]:
                continue
            ds = datasets[c["dataset"]]
            H.warm(ds["path"])
            for n in c["threads"]:
                order = list(c["systems"])
                rng.shuffle(order)
                shown = []
                for system in order:
                    base = {"rep": rep, "case": c["kind"], "dataset": ds["name"], "system": system, "threads": n}
                    why = unavailable(system, status)
                    rec = {"status": "failed", "error": why} if why else measure(system, c, ds, n, inputs)
                    runs.append(dict(base, **rec))
                    if rec["status"] == "ok":
                        shown.append(f"{system} {rec['time_s']:.2f}s {rec['peak_rss_bytes'] / 2**20:.0f}MiB")
                    else:
                        shown.append(f"{system} FAILED")
                        H.log(f"  FAILED {system} {c['id']} n={n}: {rec.get('error')}: "
                              f"{IR.R.err_summary(rec.get('stderr', ''))}")
                H.log(f"rep {rep}/{c['reps']} {c['id']} n={n}: " + ", ".join(shown))
    return runs


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1024² files (2048² for the memory case): a smoke run")
    ap.add_argument("--reps", type=int, default=None, help="reps of each timed case (default 3; --quick 1)")
    ap.add_argument("--threads", default="1,all", help="thread counts, comma separated; all = every CPU")
    ap.add_argument("--cases", default="", help="cases (import, export, memory, a dataset, or kind:dataset)")
    ap.add_argument("--systems", default="", help=f"systems, comma separated (default all: {', '.join(SYSTEMS)})")
    ap.add_argument("--output", default=None, help=f"report path (default {os.path.relpath(IMAGES_MD, H.ROOT)}; "
                                                   f"with --quick {os.path.relpath(quick_md(), H.ROOT)})")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the results JSON")
    ap.add_argument("--setup-only", action="store_true",
                    help="set up (venvs, builds) and write the image files of the selected cases, then stop")
    a = ap.parse_args()
    if a.report_only:
        path = results_json(a.quick)
        with open(path) as f:
            doc = json.load(f)
        return finish(doc, a.output or (quick_md() if a.quick else IMAGES_MD))
    a.reps = a.reps if a.reps is not None else (1 if a.quick else 3)
    for s in (s for s in a.systems.split(",") if s):
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r}; known: {', '.join(SYSTEMS)}")
    all_cpus = len(H.allowed_cpus())
    try:
        counts = H.parse_threads(a.threads, all_cpus)
    except ValueError as e:
        ap.error(f"--threads: {e}")
    t_start = time.perf_counter()

    env = H.build_env()
    os.makedirs(DATA, exist_ok=True)
    H.ensure_peers()
    ensure_peer_image_packages()
    cases = selected_cases(a)
    if not cases:
        ap.error(f"--cases selects nothing; cases: {', '.join(c['id'] for c in selected_cases(argparse.Namespace(cases='')))}")
    datasets = ensure_datasets(a.quick, sorted({c["dataset"] for c in cases}))
    cases = plan(a, cases, datasets, counts, all_cpus)
    if not cases:
        ap.error("no system of --systems runs in the selected cases")
    runners = {SYSTEMS[s]["runner"] for c in cases for s in c["systems"]}
    status = {}
    if "ours" in runners:
        H.ensure_ours(env)
    if "driver" in runners or any(c["kind"] == "export" for c in cases):
        status["driver"] = H.ensure_driver(env)
    if "cimg" in runners:
        status["cimg"] = ensure_cimg(env)
    if a.setup_only:
        H.log(f"set up; image files in {os.path.relpath(DATA, H.ROOT)}")
        return 0
    shutil.rmtree(os.path.join(H.WORK, "tmp", "images-inputs"), ignore_errors=True)
    inputs = prepare_export_inputs(cases, datasets, status.get("driver", ("ok",))[0] == "ok")

    machine = H.facts(env)
    machine["load_before"] = H.loadavg()
    machine["allowed_cpus"] = H.allowed_cpus()
    machine["harness_rss_bytes"] = own_rss()
    H.log(f"run: {len(cases)} cases, {a.reps} rep(s), thread counts {counts}")
    runs = run_cases(cases, datasets, inputs, status)
    machine["load_after"] = H.loadavg()
    shutil.rmtree(os.path.join(H.WORK, "tmp", "images-inputs"), ignore_errors=True)
    doc = {
        "config": {"command": "python3 benches/harness/images.py" + "".join(f" {x}" for x in sys.argv[1:]),
                   "quick": a.quick, "reps": a.reps, "threads": counts, "all_cpus": all_cpus,
                   "cases": [{k: c[k] for k in ("id", "kind", "dataset", "systems", "threads", "reps", "ext") if k in c}
                             for c in cases],
                   "timeout_s": TIMEOUT, "shuffle_seed": SHUFFLE_SEED},
        "machine": machine,
        "datasets": datasets,
        "build_status": status,
        "duration_s": time.perf_counter() - t_start,
        "runs": runs,
    }
    with open(results_json(a.quick), "w") as f:
        json.dump(doc, f, indent=1)
    return finish(doc, a.output or (quick_md() if a.quick else IMAGES_MD))


def finish(doc: dict, output: str) -> int:
    rows = IR.write_report(doc, output)
    H.log("")
    H.log("== Targets ==")
    for r in rows:
        H.log(f"  {r['status']:8} {r['target']}: {r['result']}")
    nfail = sum(1 for r in doc["runs"] if r["status"] == "failed")
    nok = sum(1 for r in doc["runs"] if r["status"] == "ok")
    H.log(f"== {nok} values, {nfail} failures, {doc['duration_s'] / 60:.1f} min; results: "
          f"{os.path.relpath(results_json(doc['config']['quick']), H.ROOT)}, report: {os.path.relpath(output, H.ROOT)} ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
