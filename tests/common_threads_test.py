"""Tests of the thread-pool setting (`common.threads`) and the configs that use it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from common import config as config_lib
from common import threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (the pools are fixed per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_configure_sets_both_pools_before_the_first_op():
    out = _python(
        """
        import tensorflow as tf
        from common import threads
        print(threads.configure(1, 2))
        tf.constant(1.0) + 1.0
        print(tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
        """
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "threads: intra-op 1, inter-op 2"
    assert lines[-1] == "1 2"


def test_configure_after_the_first_op_explains_itself():
    out = _python(
        """
        import tensorflow as tf
        from common import threads
        tf.constant(1.0) + 1.0
        try:
            threads.configure(1, 1)
        except RuntimeError as e:
            print("refused:", e)
        """
    )
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "before the first op" in out.stdout


def test_zero_keeps_the_default_and_bad_counts_are_refused():
    assert threads.configure(0, 0) == "threads: intra-op default, inter-op default"
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="intra_op_threads"):
            threads.configure(bad, 0)


def test_omniglot_5w1s_uses_the_pools_measured_fastest_and_20w1s_the_default():
    from maml.experiments import configs

    five = configs.CLASSIFICATION_EXPERIMENTS["omniglot_5w1s"]
    twenty = configs.CLASSIFICATION_EXPERIMENTS["omniglot_20w1s"]
    assert (five.intra_op_threads, five.inter_op_threads) == (1, 2)
    assert (twenty.intra_op_threads, twenty.inter_op_threads) == (0, 0)


def test_a_run_saved_before_the_thread_fields_existed_still_resumes(tmp_path):
    from maml.experiments import configs

    cfg = configs.CLASSIFICATION_EXPERIMENTS["omniglot_5w1s"]
    saved = config_lib.to_dict(dataclasses.replace(cfg))
    del saved["intra_op_threads"], saved["inter_op_threads"]
    with open(tmp_path / config_lib.CONFIG_FILE, "w") as f:
        json.dump(saved, f)
    assert config_lib.claim_output_dir(str(tmp_path), cfg, configs.RESUMABLE_FIELDS)
