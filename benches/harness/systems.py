"""The systems and metrics of the harness: which interpreter or executable runs each system,
which metrics each Python system has, and at which thread counts each metric runs. No
third-party imports: run.py (any Python 3.11) and py_worker.py (either venv) both import it."""

# Every metric, in report order. The `*_durable` metrics are not separate worker runs: the
# worker of their base metric (DURABLE_OF) measures the same loop once more with the final
# flush to disk added and reports it under `also` (see README.md, "Worker protocol").
METRICS = [
    "construct",
    "construct_durable",
    "read_all",
    "read_all_again",
    "decompress",
    "rewrite",
    "rewrite_durable",
    "random",
    "open",
    "two_threads",
    "lazy_rss",
    "size_rewrites",
]

DURABLE_OF = {"construct_durable": "construct", "rewrite_durable": "rewrite"}

# The metrics a worker is asked for.
WORKER_METRICS = [m for m in METRICS if m not in DURABLE_OF]

# Metrics whose value does not depend on the dataset (they make their own data): run.py runs
# them under one dataset only.
DATASET_INDEPENDENT = {"lazy_rss"}

# unit of each metric's values
UNITS = {
    "construct": "s",
    "construct_durable": "s",
    "read_all": "s",
    "read_all_again": "s",
    "decompress": "s",
    "rewrite": "s",
    "rewrite_durable": "s",
    "random": "s",
    "open": "s",
    "two_threads": "x",
    "lazy_rss": "bytes",
    "size_rewrites": "bytes",
}

# Metrics whose times cover the whole uncompressed channel (shown also as MB/s).
THROUGHPUT_METRICS = {"construct", "construct_durable", "read_all", "read_all_again", "decompress", "rewrite",
                      "rewrite_durable"}

# Metrics measured once, at a fixed thread count ("all": every CPU the harness may use): `open`
# decodes nothing; `two_threads` brings its own two Python threads; `lazy_rss` and
# `size_rewrites` measure bytes. Every other metric runs at each thread count of `--threads`
# (default 1 and all): the chunk-by-chunk loops (`read_all`, `read_all_again`, `random`,
# `rewrite`) then give c-blosc2 n threads inside each chunk on every system.
FIXED_THREADS = {
    "open": 1,
    "two_threads": "all",
    "lazy_rss": "all",
    "size_rewrites": "all",
}

# system -> environment: "peers" (benches/harness/.venv-peers), "ours" (the repository's
# .venv), "rust" (target/release/examples/bench_driver).
SYSTEMS = {
    "compressed-image-1.0.1": "peers",
    "blosc2-schunk-mem": "peers",
    "blosc2-frame-disk": "peers",
    "blosc2-frame-mmap": "peers",
    "zarr-v3": "peers",
    "cimg-python": "ours",
    "cimg-python-anon": "ours",
    "memcpy": "rust",
    "blosc2-raw": "rust",
    "cimg-file": "rust",
    "cimg-anon": "rust",
}

# Systems with no threads at all: run at thread count 1 only.
SINGLE_THREADED_SYSTEMS = {"memcpy"}

PY_FILE_SYSTEMS = {"blosc2-frame-disk", "blosc2-frame-mmap", "zarr-v3", "cimg-python"}


def py_skip_reason(system: str, metric: str):
    """None if the Python system has the metric, else why not."""
    if (metric in ("open", "size_rewrites") or metric in DURABLE_OF) and system not in PY_FILE_SYSTEMS:
        return "in-memory system: no file"
    return None


def thread_counts(metric: str, system: str, counts: list[int], all_cpus: int) -> list[int]:
    """The thread counts at which `system` runs `metric`, given `--threads` (`counts`)."""
    fixed = FIXED_THREADS.get(metric)
    if fixed is not None:
        return [all_cpus if fixed == "all" else fixed]
    if system in SINGLE_THREADED_SYSTEMS:
        return [1] if 1 in counts else []
    return counts
