"""The systems and metrics of the harness: which interpreter or executable runs each system,
and which metrics each Python system has. No third-party imports: run.py (any Python 3.11)
and py_worker.py (either venv) both import it."""

METRICS = [
    "construct",
    "read_all",
    "read_all_again",
    "decompress",
    "rewrite",
    "random",
    "open",
    "two_threads",
    "lazy_rss",
    "size_rewrites",
]

# Metrics whose value does not depend on the dataset (they make their own data): run.py runs
# them under one dataset only.
DATASET_INDEPENDENT = {"lazy_rss"}

# unit of each metric's values
UNITS = {
    "construct": "s",
    "read_all": "s",
    "read_all_again": "s",
    "decompress": "s",
    "rewrite": "s",
    "random": "s",
    "open": "s",
    "two_threads": "x",
    "lazy_rss": "bytes",
    "size_rewrites": "bytes",
}

# Metrics whose times cover the whole uncompressed channel (shown also as MB/s).
THROUGHPUT_METRICS = {"construct", "read_all", "read_all_again", "decompress", "rewrite"}

# system -> environment: "peers" (benches/harness/.venv-peers), "ours" (/work/main/.venv),
# "rust" (target/release/examples/bench_driver).
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

PY_FILE_SYSTEMS = {"blosc2-frame-disk", "blosc2-frame-mmap", "zarr-v3", "cimg-python"}


def py_skip_reason(system: str, metric: str):
    """None if the Python system has the metric, else why not."""
    if metric in ("open", "size_rewrites") and system not in PY_FILE_SYSTEMS:
        return "in-memory system: no file"
    return None
