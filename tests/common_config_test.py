"""The config convention and the output-directory guard."""

import dataclasses
import json
import os
import tempfile

import pytest

from common import config


@dataclasses.dataclass(frozen=True)
class _Cfg:
    experiment: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    rate: float = 0.1
    log_every: int = 10


def test_roundtrip_restores_tuples():
    with tempfile.TemporaryDirectory() as d:
        config.save_config(_Cfg(sizes=(3, 4)), d)
        loaded = config.load_config(_Cfg, d)
    assert loaded == _Cfg(sizes=(3, 4))
    assert isinstance(loaded.sizes, tuple)


def test_claim_fresh_then_resume():
    with tempfile.TemporaryDirectory() as parent:
        d = os.path.join(parent, "run")
        assert config.claim_output_dir(d, _Cfg()) is False
        assert config.claim_output_dir(d, _Cfg()) is True
        assert config.claim_output_dir(d, _Cfg(log_every=5), ("log_every",)) is True
        with open(os.path.join(d, config.CONFIG_FILE)) as f:
            assert json.load(f)["log_every"] == 5


def test_refuses_other_experiment_other_settings_and_foreign_files():
    with tempfile.TemporaryDirectory() as d:
        config.claim_output_dir(d, _Cfg())
        path = os.path.join(d, config.CONFIG_FILE)
        with open(path) as f:
            before = f.read()
        with pytest.raises(config.OutputDirError, match="experiment 'a'"):
            config.claim_output_dir(d, _Cfg(experiment="b"))
        with pytest.raises(config.OutputDirError, match="rate"):
            config.claim_output_dir(d, _Cfg(rate=0.2))
        with open(path) as f:
            assert f.read() == before
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "notes.txt"), "w").close()
        with pytest.raises(config.OutputDirError, match="not empty"):
            config.claim_output_dir(d, _Cfg())
        assert os.listdir(d) == ["notes.txt"]


def test_saved_experiment_names_the_run_or_says_what_is_missing(tmp_path):
    config.save_config(_Cfg(experiment="b"), str(tmp_path))
    assert config.saved_experiment(str(tmp_path)) == "b"
    with pytest.raises(FileNotFoundError, match="is .*empty a run directory"):
        config.saved_experiment(str(tmp_path / "empty"))
