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

from common import machine, memory

memory.request_allocator_stats()
machine.request_onednn()


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
