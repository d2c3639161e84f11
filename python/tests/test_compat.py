"""An unchanged script written for compressed-image 1.0.1 runs against this module with the
same results.

compat_1_0_1_expected.json is the script's output under compressed-image 1.0.1 itself (the
PyPI wheel, numpy 2); the only difference allowed is the documented cap of the chunk size
to the channel size.
"""

import json
import os

import pytest

from conftest import run_python

HERE = os.path.dirname(__file__)

# key -> our value, for the documented deviations the script touches.
DEVIATIONS = {
    # Image of 1024 x 500 uint16, default 4 MiB request: 1.0.1 reports 4,194,304 (2048
    # rows of a 500-row channel); we cap the chunk to the channel, 500 rows.
    "image_chunk_size": 500 * 1024 * 2,
}


@pytest.mark.extension
def test_unchanged_1_0_1_script_gives_the_same_results():
    with open(os.path.join(HERE, "compat_1_0_1_script.py")) as f:
        code = f.read()
    with open(os.path.join(HERE, "compat_1_0_1_expected.json")) as f:
        expected = json.load(f)
    got = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == DEVIATIONS.get(key, value), key
    # and the script checked what it meant to check
    assert all(v is True for k, v in got.items() if k.endswith("_ok"))
