"""The type stubs (compressed_image/__init__.pyi) match the module and serve mypy --strict."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.extension

TYPING = os.path.join(os.path.dirname(__file__), "typing")


def run_module(module, *args):
    """`python -m module *args` in tests/typing; returns CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=TYPING,
        timeout=600,
    )


def mypy(request, *args):
    # A cache kept between runs: checking against numpy's stubs from scratch takes a while.
    return run_module("mypy", "--cache-dir", str(request.config.cache.mkdir("mypy")), *args)


def test_typed_usage_passes_mypy_strict(request):
    proc = mypy(request, "--strict", "typed_usage.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_rejects_misuse_through_the_stubs(request):
    proc = mypy(request, "--strict", "misuse.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'misuse.py:9: error: Incompatible return value type (got "int", expected "str")' in proc.stdout
    assert 'misuse.py:13: error: No overload variant of "read" of "Image" matches' in proc.stdout
    assert 'misuse.py:17: error: Argument "depth" to "write" of "Image" has incompatible type' in proc.stdout
    assert 'misuse.py:21: error: Too many positional arguments for "write" of "Image"' in proc.stdout


def test_stubs_match_the_runtime_module():
    # The allowlist holds only what stubtest cannot see, each entry with its reason.
    proc = run_module(
        "mypy.stubtest", "compressed_image", "--allowlist", "stubtest-allowlist.txt"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
