"""Runs one test file under pytest; the `main` of every Bazel py_test here."""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)
    sys.exit(
        pytest.main(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                *[os.path.join(here, a) for a in sys.argv[1:]],
            ]
        )
    )
