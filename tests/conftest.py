"""pytest set-up shared by every test file.

The memory tests measure peak allocator memory, which TensorFlow 2.21's default
CPU allocator does not count on every machine; the mains ask for a counting
allocator themselves (`common.memory.request_allocator_stats`), and so does the
test process here, before any test module imports TensorFlow. Likewise the
classification and ODE mains ask for TensorFlow's oneDNN kernels, which
TensorFlow leaves off on some x86 CPUs (`common.machine.request_onednn`), and so
does the test process, so the tests exercise the kernels the mains run (the
grouped-convolution inner loop among them). Tests that need the plain
environment (no such variable) start a subprocess without it.
"""

import os
import shutil
import tempfile

from common import machine, memory

memory.request_allocator_stats()
machine.request_onednn()

# One dataset cache per test run (`REPRO_CACHE_DIR`, read by the tests that load
# real Omniglot or MNIST), made by the first process that imports this file and
# inherited by pytest-xdist's workers: the preprocessed Omniglot array (~10 s to
# build from the zips) is then built once per run instead of once per test. A
# fresh directory each run, so no test reads a cache that older code wrote; set
# the variable yourself to keep one across runs.
_OWN_CACHE = None
if not os.environ.get("REPRO_CACHE_DIR"):
    _OWN_CACHE = tempfile.mkdtemp(prefix="repro-test-cache-")
    os.environ["REPRO_CACHE_DIR"] = _OWN_CACHE


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "heavy: a file of slow tests (a minute or more in all), run first",
    )


def pytest_collection_modifyitems(config, items):
    """Runs the files marked `heavy` first (a stable sort: order kept otherwise).

    The suite runs on two workers, one whole file at a time (pyproject.toml); a
    slow file handed out last would leave one worker running it alone at the
    end, so the slow files go first and the many quick ones fill in after.
    """
    del config
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


def pytest_unconfigure(config):
    del config
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
