"""Runs one test file under pytest; the `main` of every Bazel py_test here.

With `REPRO_TEST_COLLECT_ONLY=1` in the environment (CI passes it with
`bazel test --test_env`), the file is only imported and its tests collected:
CI has already run every test with pytest, and what Bazel adds is the check that
each target's declared deps hold everything its test file imports (Bazel's
sandbox holds nothing else), which collection alone settles. A developer's plain
`bazel test //...` runs the tests in full.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)
    collect_only = os.environ.get("REPRO_TEST_COLLECT_ONLY", "") == "1"
    sys.exit(
        pytest.main(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                *(["--collect-only"] if collect_only else []),
                *[os.path.join(here, a) for a in sys.argv[1:]],
            ]
        )
    )
