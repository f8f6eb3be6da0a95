"""Magnet loss vs softmax vs triplet: the paper's claims on CPU-sized data.

Two experiments, both `run(config, output_dir) -> record`:

* "classification" (claims 1 and 2): each loss trains the same network from the
  same initial weights (random by default) on `dataset`; test error by each
  loss's own rule (magnet rule with the paper's running-average sigma^2,
  softmax argmax, kNN for triplet) and, for all, kNN, nearest class mean and
  the magnet rule with the recomputed sigma^2.
  Claim 1: magnet's error is 30-40% (relative) below triplet's and matches or
  beats softmax. Claim 2: magnet reaches triplet's error in 5-30x fewer
  iterations; measured on the evaluation curves (resolution `eval_every`) as
  triplet's steps to its best error over magnet's steps to the same error.
* "hierarchy" (claim 3): the losses train on the COARSE labels only; the test
  set is classified by kNN among training embeddings labelled with FINE labels.
  Claim 3: magnet's fine-label kNN error is 10-25% (relative) below softmax's and
  25-50% below triplet's.

The paper's numbers are not in `common.published` (they could not be checked),
so the report compares with the claims as the paper states them in its abstract
(text in the table) and computes each verdict from our numbers
(`magnet.experiments.verdicts`). A difference of errors within its 95% interval
(two independent binomial proportions) is "inconclusive".

Substitutions (stated in every report): the paper's fine-grained datasets
(Stanford Dogs, Oxford 102 Flowers, Oxford-IIIT Pet) and ImageNet-pretrained
GoogLeNet become `dataset` (Fashion-MNIST, CIFAR-10, ...) and a small CNN
(`magnet.networks`). By default every loss starts from the same random
initialisation (`warm_start_epochs=0`); a softmax warm start on the training
labels remains available but gives every loss a head start the paper's protocol
does not have. `augment` adds random crop and flip; `validation_per_class`
evaluates on a validation split carved from the training set (for tuning).

Outputs: results.json / report.md (`common.results`, cells=[] and extra tables),
`error_curves.png`, `embeddings.png` (2-D PCA of test embeddings at several
points of training, per loss; `magnet.experiments.figures`), TensorBoard logs,
per-loss curves and embedding snapshots; every loss resumes after kill -9
(`magnet.trainer`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import plots, published, results, seeding, stats, validation
from magnet import datasets, networks, run_files, trainer
from magnet.experiments import figures as figure_lib
from magnet.experiments import validation_split, verdicts

EXPERIMENTS = ("classification", "hierarchy")
CURVES_FIGURE = "error_curves.png"
EMBEDDINGS_FIGURE = "embeddings.png"
RESUMABLE_FIELDS = (
    "steps",
    "max_train_minutes",
    "log_every",
    "losses",
    "embed_batch_size",
)
PAPER_DATASETS = {
    "classification": "Stanford Dogs, Oxford 102 Flowers and Oxford-IIIT Pet "
    "(fine-grained, ImageNet-pretrained GoogLeNet)",
    "hierarchy": "the paper's hierarchy-recovery data (a labelled class hierarchy "
    "at ImageNet-like scale, ImageNet-pretrained GoogLeNet)",
}
# The abstract's claims, from the registry (`common.published.CLAIMS`).
CLAIMS = {c.key: c.statement for c in published.CLAIMS if c.paper == "magnet"}


@dataclasses.dataclass(frozen=True)
class MagnetConfig(trainer.TrainSettings):
    """One experiment's protocol: the data, the losses compared, and training.

    The training fields and their defaults (a ~10-minute CPU run) are those of
    `magnet.trainer.TrainSettings`, where each is described with its source;
    this class adds what the comparison and its data need. Saved as the run's
    `config.json` (every field, flat).

    Attributes:
        experiment: "classification" or "hierarchy".
        dataset: A `magnet.datasets.DATASETS` name.
        losses: Losses to train and compare, among "magnet", "softmax",
            "triplet".
        warm_start_epochs: Epochs of softmax training on the training labels
            every loss starts from (0, the default: the same random
            initialisation for every loss, as the issue asks; the paper starts
            from ImageNet weights, i.e. from other data).
        image_size: Image side for datasets that can be resized (Omniglot,
            fine-grained sets); None = the loader's default. CIFAR-10 and
            Fashion-MNIST only take their native sizes.
        max_per_class: Keep the first this many examples of every fine class in
            each split (None: all).
        data_dir: Data root (`cifar10/`, `fashion_mnist/`, `omniglot/`, ...).
        cache_dir: Cache of decoded datasets.
        validation_per_class: If set, this many training images per training
            class are held out and used as the evaluation set instead of the
            test set (hyper-parameter tuning).

    Example:
        >>> config = MagnetConfig(dataset="cifar10", steps=500, eval_every=100)
        >>> config.batch_size, config.losses
        (48, ('magnet', 'softmax', 'triplet'))
    """

    experiment: str = "classification"
    dataset: str = "fashion_mnist"
    losses: tuple[str, ...] = trainer.LOSSES
    warm_start_epochs: float = 0.0
    image_size: int | None = None
    max_per_class: int | None = None
    data_dir: str = "../shared/data"
    cache_dir: str = "runs/cache/magnet"
    validation_per_class: int | None = None

    def __post_init__(self) -> None:
        validation.require_one_of("experiment", self.experiment, EXPERIMENTS)
        validation.require_one_of("dataset", self.dataset, datasets.DATASETS)
        unknown = [x for x in self.losses if x not in trainer.LOSSES]
        if unknown or not self.losses or len(set(self.losses)) != len(self.losses):
            raise ValueError(
                f"losses must be distinct names among {trainer.LOSSES}, "
                f"got {self.losses}"
            )
        super().__post_init__()
        validation.require_non_negative("warm_start_epochs", self.warm_start_epochs)
        for name in ("image_size", "max_per_class", "validation_per_class"):
            value = getattr(self, name)
            if value is not None:
                validation.require_positive(name, value)


def load_labelled_images(config: MagnetConfig) -> datasets.LabelledImages:
    """The dataset of `config` (tests replace this function)."""
    return _load_cached(
        config.dataset,
        config.data_dir,
        config.cache_dir,
        config.max_per_class,
        config.image_size,
    )


@functools.lru_cache(maxsize=2)
def _load_cached(
    name: str,
    data_dir: str,
    cache_dir: str,
    max_per_class: int | None,
    image_size: int | None,
) -> datasets.LabelledImages:
    kwargs = {} if image_size is None else {"image_size": image_size}
    return datasets.load_dataset(name, data_dir, cache_dir, max_per_class, **kwargs)


def train_data(config: MagnetConfig, data: Any) -> trainer.TrainData:
    """The arrays the trainer sees: fine labels, or coarse labels + fine extra.

    With `validation_per_class`, the evaluation set is that many training
    images per training class (stratified by the training labels), removed
    from training; the test set is then not used.

    Raises:
        ValueError: "hierarchy" on a dataset without coarse labels.
    """
    hierarchy = config.experiment == "hierarchy"
    if hierarchy and data.coarse_names is None:
        raise ValueError(
            f"the hierarchy experiment needs coarse labels, and "
            f"{config.dataset} has none (use cifar10, fashion_mnist, "
            "omniglot_alphabets or oxford_iiit_pet)"
        )
    train_x, fine_train = data.train_images, np.asarray(data.train_labels)
    test_x, fine_test = data.test_images, np.asarray(data.test_labels)
    coarse_train = coarse_test = None
    if hierarchy:
        coarse_train = np.asarray(data.coarse_train_labels)
        coarse_test = np.asarray(data.coarse_test_labels)
    if config.validation_per_class is not None:
        keep, held = validation_split.carve(
            coarse_train if hierarchy else fine_train,
            config.validation_per_class,
            seed=config.seed,
        )
        test_x, fine_test = train_x[held], fine_train[held]
        train_x, fine_train = train_x[keep], fine_train[keep]
        if hierarchy:
            coarse_test, coarse_train = coarse_train[held], coarse_train[keep]
    if not hierarchy:
        return trainer.TrainData(
            train_images=train_x,
            train_labels=fine_train,
            test_images=test_x,
            test_labels=fine_test,
            class_names=tuple(data.class_names),
        )
    return trainer.TrainData(
        train_images=train_x,
        train_labels=coarse_train,
        test_images=test_x,
        test_labels=coarse_test,
        class_names=tuple(data.coarse_names),
        extra_labels={"fine": (fine_train, fine_test)},
    )


def check_inputs(config: MagnetConfig) -> trainer.TrainData:
    """Loads the data and checks it fits the config, before anything is written.

    Raises:
        DatasetError: The dataset's files are missing or broken.
        ValueError: The config does not fit the data (no coarse labels, K larger
            than a class, too few impostor clusters).
    """
    data = train_data(config, load_labelled_images(config))
    trainer.check_data(data, config)
    return data


def _pct(value: float | None, n: int | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{100 * value:.2f}"
    if n:
        text += f" ± {100 * stats.proportion_ci95(value, n):.2f}"
    return text


def speed_table(title: str, speed: dict[str, Any]) -> dict[str, Any]:
    """The report table of claim 2: when each loss first reaches the target error.

    Args:
        title: The table's title.
        speed: `verdicts.first_step_reaching`-style details: target_error,
            triplet_step/seconds, magnet_step/seconds (None: not reached).
    """
    target = _pct(speed["target_error"])
    magnet_step = speed["magnet_step"]
    magnet_seconds = speed["magnet_seconds"]
    return {
        "title": title,
        "header": [
            "loss",
            "target error (%)",
            "first evaluation at or below",
            "training seconds until then",
        ],
        "rows": [
            ["triplet", target, speed["triplet_step"], speed["triplet_seconds"]],
            [
                "magnet",
                target,
                "not reached" if magnet_step is None else magnet_step,
                "-" if magnet_seconds is None else magnet_seconds,
            ],
        ],
    }


def _deviations(
    config: MagnetConfig, data: trainer.TrainData, raw: Any, warm_steps: int
) -> list[str]:
    what = (
        "classes"
        if config.experiment == "classification"
        else "coarse classes (evaluated on fine classes)"
    )
    sizes = (
        f"{len(data.train_labels):,} training / {len(data.test_labels):,} test "
        f"images of {data.num_classes} {what}"
    )
    if config.max_per_class is not None:
        sizes += f", at most {config.max_per_class} per fine class and split"
    devs = [
        f"Dataset: {config.dataset} ({sizes}, {'x'.join(map(str, data.input_shape))}"
        f") instead of {PAPER_DATASETS[config.experiment]}.",
        f"Network: a small CNN ({networks.DEFAULT_WIDTHS} channels, embedding "
        f"{config.embedding_dim}) instead of GoogLeNet with batch normalisation; "
        + (
            f"every loss starts from the same softmax warm start of "
            f"{config.warm_start_epochs:g} epochs ({warm_steps} steps) on the "
            "training labels instead of ImageNet pretraining (a head start on the "
            "target labels the paper does not have)."
            if warm_steps
            else "every loss starts from the same random "
            f"initialisation (seed {config.seed}) instead of ImageNet "
            "pretraining."
        ),
        f"Budget: {config.steps:,} iterations per loss at batch size "
        f"{config.num_clusters * config.examples_per_cluster} on a CPU; "
        + (
            "random crop (4-pixel padding) and flip."
            if config.augment
            else "no data augmentation."
        ),
        "Evaluation set: "
        + (
            f"{config.validation_per_class} training images per "
            "class held out (validation, for tuning)."
            if config.validation_per_class
            else "the test set."
        ),
        "Triplet baseline: FaceNet semi-hard mining over all pairs of "
        "class-balanced batches on L2-normalised embeddings, margin "
        f"{config.triplet_margin:g} (the paper's triplet setup may differ).",
    ]
    if config.experiment == "hierarchy":
        fine = f"{len(raw.class_names)} fine classes" if raw is not None else ""
        devs.append(
            f"Hierarchy: {config.dataset}'s {data.num_classes} coarse "
            f"classes ({', '.join(data.class_names[:6])}"
            f"{', ...' if data.num_classes > 6 else ''}) over {fine}; "
            "'relative gain' is read as the relative reduction of the "
            "fine-label kNN error."
        )
    return devs


def run(
    config: MagnetConfig,
    output_dir: str,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Trains the losses, evaluates the claims, writes results.json and report.md.

    Args:
        config: The protocol.
        output_dir: The run directory (resumed if it holds this run).
        strategy: Optional `tf.distribute` strategy for the losses' training
            (`magnet.trainer.train`); the optional warm start and the
            evaluations run on one device.
    """
    data = check_inputs(config)
    raw = load_labelled_images(config)
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    run_files.save_data_info(
        output_dir,
        input_shape=data.input_shape,
        class_names=data.class_names,
        num_train=len(data.train_labels),
        num_test=len(data.test_labels),
        embedding_dim=config.embedding_dim,
    )

    keras.utils.set_random_seed(config.seed)
    base = networks.build_embedder(data.input_shape, config.embedding_dim)
    warm_loop, head = networks.warm_start(
        base,
        data.train_images,
        data.train_labels,
        data.num_classes,
        config.warm_start_epochs,
        output_dir,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        log_every=config.log_every,
    )
    initial = {"embedder": base.get_weights(), "head": head}

    trained = {
        name: trainer.train(name, data, config, output_dir, initial, strategy=strategy)
        for name in config.losses
    }
    curves = {name: r.curve for name, r in trained.items()}
    n = len(data.test_labels)
    final = {name: r.final for name, r in trained.items()}

    def err(loss_name: str, key: str = "error") -> float | None:
        return final.get(loss_name, {}).get(key)

    hierarchy = config.experiment == "hierarchy"
    primary = "fine_knn_error" if hierarchy else "error"
    rule = {
        "magnet": f"magnet rule, {config.sigma2_rule} sigma^2",
        "softmax": "softmax argmax",
        "triplet": "kNN",
    }
    error_rows = []
    for name, r in trained.items():
        f = r.final
        row = [figure_lib.LABELS[name]]
        if hierarchy:
            row.append(_pct(f.get("fine_knn_error"), n))
        row += [
            f"{_pct(f.get('error'), n)} ({rule[name]})",
            _pct(f.get("knn_error")),
            _pct(f.get("centroid_error")),
            _pct(f.get("magnet_error_running")),
            _pct(f.get("magnet_error_recomputed")),
            _pct(f.get("softmax_error")),
            f"{r.loop.steps:,}",
            f"{r.loop.train_seconds / 60:.1f}",
            r.loop.status,
        ]
        error_rows.append(row)
    header = (
        ["loss"]
        + (["fine-label kNN error (%)"] if hierarchy else [])
        + [
            ("coarse " if hierarchy else "") + "error, own rule (%)",
            f"kNN, k={config.knn_k} (%)",
            "nearest class mean (%)",
            f"magnet rule, K={config.clusters_per_class}, "
            f"L={config.num_neighbours}, running sigma^2 (paper) (%)",
            "magnet rule, recomputed sigma^2 (%)",
            "softmax argmax (%)",
            "iterations",
            "training minutes",
            "status",
        ]
    )

    start = (
        "softmax warm start on the training labels"
        if config.warm_start_epochs > 0
        else "random initialisation"
    )
    deviation = (
        f"dataset {config.dataset} for {PAPER_DATASETS[config.experiment]}; "
        f"small CNN from {start}; see protocol deviations"
    )
    claim_rows, claim_details = [], {}
    if hierarchy:
        for key, baseline in (
            ("hierarchy_softmax", "softmax"),
            ("hierarchy_triplet", "triplet"),
        ):
            stated = published.claim("magnet", key)
            ours, verdict = verdicts.relative_gain_verdict(
                err("magnet", primary),
                err(baseline, primary),
                n,
                stated.low,
                stated.high,
            )
            claim_rows.append([CLAIMS[key], ours, verdict, deviation])
    else:
        stated = published.claim("magnet", "triplet_error")
        ours, verdict = verdicts.relative_gain_verdict(
            err("magnet"), err("triplet"), n, stated.low, stated.high
        )
        claim_rows.append([CLAIMS["triplet_error"], ours, verdict, deviation])
        stated = published.claim("magnet", "softmax_error")
        ours, verdict = verdicts.relative_gain_verdict(
            err("magnet"), err("softmax"), n, stated.low, stated.high
        )
        claim_rows.append([CLAIMS["softmax_error"], ours, verdict, deviation])
        ours, verdict, details = verdicts.speed_verdict(
            curves.get("magnet"), curves.get("triplet"), config.eval_every
        )
        claim_rows.append([CLAIMS["speed"], ours, verdict, deviation])
        claim_details["speed"] = details

    figures = []
    keys = (
        {"fine-label kNN error": "fine_knn_error", "coarse error, own rule": "error"}
        if hierarchy
        else {
            "error, own rule": "error",
            "kNN error": "knn_error",
            "magnet-rule error": "magnet_error",
        }
    )
    panels = figure_lib.curve_panels(curves, keys, n)
    if panels:
        plots.plot_curve_panels(
            os.path.join(output_dir, CURVES_FIGURE),
            panels,
            "iteration",
            "test error (%)",
        )
        figures.append(CURVES_FIGURE)
    if figure_lib.plot_embeddings(
        os.path.join(output_dir, EMBEDDINGS_FIGURE),
        output_dir,
        tuple(config.losses),
        "fine_labels" if hierarchy else "labels",
    ):
        figures.append(EMBEDDINGS_FIGURE)

    statuses = [r.loop.status for r in trained.values()]
    status = results.overall_status(statuses)
    warm_steps = 0 if warm_loop is None else warm_loop.steps
    budget = {
        "iterations": config.steps,
        "iterations_per_loss": {k: r.loop.steps for k, r in trained.items()},
        "train_seconds": round(
            sum(r.loop.train_seconds for r in trained.values())
            + (0.0 if warm_loop is None else warm_loop.train_seconds),
            1,
        ),
        "warm_start_steps": warm_steps,
        "sessions": max(r.loop.sessions for r in trained.values()),
        "machine": results.machine_description(),
    }
    title = (
        "Fine-label kNN error after training on coarse labels"
        if hierarchy
        else "Test error by loss"
    )
    tables = [
        {
            "title": "The paper's claims (abstract) against our numbers",
            "header": ["claim", "paper states", "ours", "verdict", "deviation"],
            "rows": [
                [f"{i + 1}", c[0], c[1], c[2], c[3]] for i, c in enumerate(claim_rows)
            ],
        },
        {
            "title": f"{title} ({config.dataset}, {n:,} test images, ± 95% CI)",
            "header": header,
            "rows": error_rows,
        },
    ]
    if claim_details.get("speed"):
        tables.append(
            speed_table(
                "Iterations to reach triplet's best error (claim 2)",
                claim_details["speed"],
            )
        )
    return results.write_results(
        output_dir,
        paper="magnet",
        experiment=config.experiment,
        status=status,
        budget=budget,
        config=config_lib.to_dict(config),
        cells=[],
        deviations=_deviations(config, data, raw, warm_steps),
        figures=figures,
        extra={
            "tables": tables,
            "curves": curves,
            "claims": claim_details,
            "test_examples": n,
        },
    )
