"""common.memory: peak memory where the allocator counts, a clear None where not."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from common import memory
from tests.bare_env import REPO, bare_env


def test_request_sets_the_allocator_variable_but_keeps_a_users_choice(monkeypatch):
    monkeypatch.delenv(memory.ALLOCATOR_ENV, raising=False)
    memory.request_allocator_stats()
    assert os.environ[memory.ALLOCATOR_ENV] == "true"
    monkeypatch.setenv(memory.ALLOCATOR_ENV, "false")
    memory.request_allocator_stats()
    assert os.environ[memory.ALLOCATOR_ENV] == "false"


def test_peak_covers_a_tensor_allocated_in_between():
    # conftest asked for the counting allocator, so the probe must work here and
    # see at least the 16 MiB float32 tensor made (and kept alive) in between.
    probe = memory.PeakMemory()
    assert probe.start(), probe.reason
    x = tf.fill([4 * 2**20], 1.0)
    extra = probe.peak_extra_bytes()
    assert extra is not None and extra >= x.shape[0] * 4
    assert probe.reason is None


def _raise(*args, **kwargs):
    raise ValueError("Cannot reset memory stats for device 'CPU:0'")


def test_allocator_without_statistics_gives_none_and_a_reason(monkeypatch):
    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", _raise)
    probe = memory.PeakMemory()
    assert not probe.start()
    assert probe.peak_extra_bytes() is None
    assert memory.ALLOCATOR_ENV in probe.reason and "CPU:0" in probe.reason


def test_allocator_reading_zeros_counts_as_unmeasured(monkeypatch):
    monkeypatch.setattr(
        tf.config.experimental, "get_memory_info", lambda d: {"current": 0, "peak": 0}
    )
    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", lambda d: None)
    probe = memory.PeakMemory()
    assert probe.start()
    np.asarray(tf.ones([1000]))
    assert probe.peak_bytes() is None
    assert "zero peak" in probe.reason


@pytest.mark.skipif(sys.platform != "linux", reason="env -i semantics")
def test_plain_environment_child_gets_a_counting_allocator_from_the_library_call():
    # A child with only PATH, HOME and LANG (what `.ci/run` passes): calling
    # request_allocator_stats() before the first op must make the probe work.
    code = (
        "from common import memory; memory.request_allocator_stats()\n"
        "import tensorflow as tf\n"
        "p = memory.PeakMemory(); ok = p.start(); x = tf.fill([2**20], 1.0)\n"
        "print('EXTRA', p.peak_extra_bytes(), p.reason)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("EXTRA"))
    extra = line.split()[1]
    assert extra != "None" and int(extra) >= 4 * 2**20, line
