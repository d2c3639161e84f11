import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import compressed_image as ci

# Every supported element type, in the order the reference lists them.
DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.uint32,
    np.int32,
]


def ramp(dtype, height, width):
    """Deterministic, compressible test data of `dtype`, shape (height, width)."""
    a = np.arange(height * width, dtype=np.int64).reshape(height, width)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        a = a % (min(int(info.max), 1000) + 1)
    else:
        a = (a % 2048) * 0.25
    return a.astype(dtype)


def run_python(code, *args, check=True, timeout=120, preexec_fn=None):
    """Run `code` in a fresh interpreter (another process); returns CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"child failed ({proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def f32_channel():
    """A 100 x 30 f32 channel of 4 chunks (800, 800, 800, 600 elements)."""
    data = np.arange(3000, dtype=np.float32).reshape(30, 100)
    return ci.Channel(data, 100, 30, chunk_size=3200), data


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "extension: checks an addition to, or a documented deviation from, compressed-image "
        "1.0.1 (everything unmarked also holds for 1.0.1 itself)",
    )
    config.addinivalue_line(
        "markers", "crash: a case where compressed-image 1.0.1 crashes or corrupts; we are safe"
    )
