"""One config: MagnetConfig extends TrainSettings and saves the same 31 fields."""

import dataclasses

import pytest

from common import config as config_lib
from magnet import trainer
from magnet.experiments import experiment

# The fields of a run's config.json: runs resume by comparing it with the new
# config (common.config.claim_output_dir), so the names must not change.
SAVED_FIELDS = {
    "experiment",
    "dataset",
    "losses",
    "steps",
    "num_clusters",
    "examples_per_cluster",
    "clusters_per_class",
    "alpha",
    "num_neighbours",
    "learning_rate",
    "embedding_dim",
    "refresh_every",
    "eval_every",
    "warm_start_epochs",
    "triplet_margin",
    "knn_k",
    "image_size",
    "max_per_class",
    "data_dir",
    "cache_dir",
    "seed",
    "log_every",
    "embed_batch_size",
    "max_train_minutes",
    "augment",
    "sigma2_rule",
    "sigma2_decay",
    "checkpoint_every",
    "early_evals",
    "validation_per_class",
    "reembed_every",
}


def test_saved_config_keeps_its_field_names():
    assert set(config_lib.to_dict(experiment.MagnetConfig())) == SAVED_FIELDS


def test_every_training_field_and_default_is_defined_once():
    training = {f.name for f in dataclasses.fields(trainer.TrainSettings)}
    own = set(experiment.MagnetConfig.__dict__.get("__annotations__", {}))
    assert training <= SAVED_FIELDS and not training & own
    config = experiment.MagnetConfig()
    for field in dataclasses.fields(trainer.TrainSettings):
        assert getattr(config, field.name) == field.default, field.name


def test_a_saved_config_reads_back_equal():
    config = experiment.MagnetConfig(
        losses=("magnet", "triplet"), steps=500, eval_every=100, checkpoint_every=50
    )
    assert (
        config_lib.from_dict(experiment.MagnetConfig, config_lib.to_dict(config))
        == config
    )


@pytest.mark.parametrize(
    "change,match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"knn_k": True}, "knn_k"),
        ({"num_clusters": 1}, "num_clusters"),
        ({"alpha": float("inf")}, "alpha"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"sigma2_decay": 1.0}, "sigma2_decay"),
        ({"sigma2_rule": "median"}, "sigma2_rule"),
        ({"max_train_minutes": 0.0}, "max_train_minutes"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"steps": 250, "checkpoint_every": 100}, "multiples of checkpoint_every"),
        ({"reembed_every": 300}, "multiple of refresh_every"),
    ],
)
def test_bad_training_values_name_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        trainer.TrainSettings(**change)
