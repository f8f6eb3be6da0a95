"""The environment of a fresh machine, for tests that start child processes.

`.ci/run` runs under `env -i` with only PATH, HOME and LANG (plus the data
folder); tests that check behaviour in such a plain environment give their
children exactly this, plus the repository on PYTHONPATH.
"""

from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bare_env(**extra: str) -> dict[str, str]:
    """PATH, HOME, LANG, PYTHONPATH=<repo>, quiet TF logs, plus `extra`."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": REPO,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **extra,
    }
