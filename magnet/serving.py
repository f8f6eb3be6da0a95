"""TF Serving export of a magnet-trained embedding network with its classifier.

Signatures (images: float32 `[batch, H, W, C]`, pixel values in [0, 255]):

* `embed(images)` -> `embeddings [batch, dim]`;
* `classify(images)` (also `serving_default`) -> `classes [batch]` (int64 label
  ids), `class_names [batch]` (strings), `scores [batch, num_classes]` (the
  rule's normalised class masses, columns in label order of `class_ids`),
  `embeddings`.

`classify` is the paper's evaluation rule (`magnet.evaluation.magnet_predict`):
the class with the largest sum of exp(-|r - mu|^2 / (2 sigma^2)) over the L
cluster centres mu nearest to the embedding r. The centres, their classes,
sigma^2 and L are stored in the SavedModel as variables, taken from the run's
last evaluation (`<run_dir>/magnet/cluster_model.npz`: K k-means clusters per
class of the final training-set embeddings). Distances are computed in float64,
like the NumPy rule.

Every request is validated inside the graph before the network runs
(`common.serving_checks`); a rejected request fails with InvalidArgumentError whose
message starts with `images` and states the rule: 1 to `max_batch_size` images
(default 256), every value finite and within the pixel range `[0, 255]`. Image size
and channels are fixed by the signature. The limits are `MagnetLimits`, fixed at
export (`export_run(..., limits=...)`, `python -m magnet.export --limit
max_batch_size=N`) and written to `assets.extra/serving_limits.json`.

Exports go through `common.export.export_for_serving` (versioned directory,
warm-up requests).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import export, serving_checks
from magnet import networks, run_files

MODEL_NAME = "magnet"
PIXEL_RANGE = (0.0, 255.0)


@dataclasses.dataclass(frozen=True)
class MagnetLimits:
    """Per-request limits of the served magnet model, fixed at export.

    Attributes:
        max_batch_size: Most images per request (`embed` and `classify`).
    """

    max_batch_size: int = 256

    def __post_init__(self) -> None:
        serving_checks.check_limits(self)


class MagnetServer(tf.Module):
    """An embedding network plus the magnet rule's cluster model.

    Args:
        embedder: Images (float pixels) -> embeddings.
        centres: `[C, dim]` cluster centres.
        cluster_classes: `[C]` class label of each centre.
        sigma2: The Gaussian kernel's variance sigma^2 > 0.
        num_neighbours: L, 1 <= L <= C.
        class_names: Name of every class label `0..num_classes-1`.
        input_shape: `(H, W, C)` of the images.
        limits: Per-request limits enforced by the signatures.
    """

    def __init__(
        self,
        embedder: keras.Model,
        centres: np.ndarray,
        cluster_classes: np.ndarray,
        sigma2: float,
        num_neighbours: int,
        class_names: Sequence[str],
        input_shape: Sequence[int],
        limits: MagnetLimits = MagnetLimits(),
    ) -> None:
        super().__init__()
        self.limits = limits
        centres = np.asarray(centres, np.float64)
        cluster_classes = np.asarray(cluster_classes, np.int64)
        if centres.ndim != 2 or cluster_classes.shape != (len(centres),):
            raise ValueError("centres must be [C, dim] with one class per centre.")
        if not sigma2 > 0:
            raise ValueError(f"sigma2 must be > 0, got {sigma2!r}.")
        if not 1 <= num_neighbours <= len(centres):
            raise ValueError(
                f"num_neighbours must be in [1, {len(centres)}], got {num_neighbours}."
            )
        class_ids, centre_class = np.unique(cluster_classes, return_inverse=True)
        self.embedder = embedder
        # The TF variables behind the Keras ones, tracked directly: without them
        # the TF1 loader (saved_model_cli, TF Serving) restores other handles
        # than the ones the signatures read (keras-team/keras#20095).
        self.embedder_variables = [v.value for v in embedder.weights]
        self.centres = tf.Variable(centres, trainable=False, name="centres")
        self.centre_class = tf.Variable(
            centre_class.astype(np.int64), trainable=False, name="centre_class"
        )
        self.class_ids = tf.Variable(class_ids, trainable=False, name="class_ids")
        names = np.asarray(class_names, dtype=object)[class_ids]
        self.class_names = tf.Variable(
            names.astype(str).tolist(), trainable=False, name="class_names"
        )
        self.sigma2 = tf.Variable(
            float(sigma2), dtype=tf.float64, trainable=False, name="sigma2"
        )
        self.num_neighbours = tf.Variable(
            int(num_neighbours), dtype=tf.int32, trainable=False, name="num_neighbours"
        )
        self._image_shape = tuple(int(s) for s in input_shape)
        spec = tf.TensorSpec([None, *self._image_shape], tf.float32, name="images")
        self.embed = tf.function(self._embed, input_signature=[spec])
        self.classify = tf.function(self._classify, input_signature=[spec])

    def _checked_embeddings(self, images: tf.Tensor) -> tf.Tensor:
        checks = serving_checks.RequestChecks()
        checks.shape(images, "images", ("batch", *self._image_shape))
        checks.rows(images, "images", 1, self.limits.max_batch_size, "max_batch_size")
        checks.finite(images, "images")
        checks.values_in(images, "images", *PIXEL_RANGE, why="pixel values")
        (images,) = checks.gate(images)
        return self.embedder(images, training=False)

    def _embed(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embeddings": self._checked_embeddings(images)}

    def _classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        emb = self._checked_embeddings(images)
        r = tf.cast(emb, tf.float64)
        mu = self.centres
        dist = (
            tf.reduce_sum(r * r, axis=1, keepdims=True)
            - 2.0 * tf.matmul(r, mu, transpose_b=True)
            + tf.reduce_sum(mu * mu, axis=1)[None, :]
        )
        dist = tf.maximum(dist, 0.0)
        neg, nearest = tf.math.top_k(-dist, k=self.num_neighbours)
        near = -neg  # [B, L], ascending distances.
        weights = tf.exp(-(near - near[:, :1]) / (2.0 * self.sigma2))
        num_classes = tf.shape(self.class_ids)[0]
        onehot = tf.one_hot(
            tf.gather(self.centre_class, nearest), num_classes, dtype=tf.float64
        )  # [B, L, classes]
        scores = tf.reduce_sum(onehot * weights[:, :, None], axis=1)
        best = tf.argmax(scores, axis=1)  # First maximum: the smallest class.
        return {
            "classes": tf.gather(self.class_ids, best),
            "class_names": tf.gather(self.class_names, best),
            "scores": tf.cast(
                scores / tf.reduce_sum(scores, axis=1, keepdims=True), tf.float32
            ),
            "embeddings": emb,
        }


def load_magnet_run(
    run_dir: str,
    limits: MagnetLimits = MagnetLimits(),
) -> MagnetServer:
    """The magnet network of a run (latest checkpoint) with its cluster model.

    Raises:
        ValueError: The run trained no magnet model, or its cluster model is not
            from the checkpointed step (rerun the same command to finish it).
    """
    config_path = os.path.join(run_dir, config_lib.CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{config_path} not found: is {run_dir} a run directory?"
        )
    with open(config_path) as f:
        config = json.load(f)  # The run's config, whichever harness wrote it.
    ckpt_dir = os.path.join(run_dir, "checkpoints", "magnet")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    cluster_path = os.path.join(run_dir, "magnet", run_files.CLUSTER_MODEL_FILE)
    if latest is None or not os.path.exists(cluster_path):
        raise ValueError(
            f"no trained magnet model in {run_dir} (losses "
            f"{tuple(config.get('losses', ()))}): train with magnet "
            "among the losses"
        )
    info = run_files.load_data_info(run_dir)
    embedder = networks.build_embedder(info["input_shape"], config["embedding_dim"])
    tf.train.Checkpoint(model=embedder).restore(latest).expect_partial()
    cluster = run_files.load_cluster_model(cluster_path)
    step = int(latest.rsplit("-", 1)[1])
    if int(cluster["step"]) != step:
        raise ValueError(
            f"{cluster_path} is from step {int(cluster['step'])} but "
            f"the checkpoint from step {step}: rerun the training "
            "command to finish the run"
        )
    return MagnetServer(
        embedder,
        cluster["centres"],
        cluster["cluster_classes"],
        float(cluster["sigma2"]),
        int(cluster["num_neighbours"]),
        [str(n) for n in cluster["class_names"]],
        info["input_shape"],
        limits,
    )


def export_server(
    server: MagnetServer,
    export_dir: str,
    model_name: str = MODEL_NAME,
    version: int | None = None,
) -> str:
    """Exports a server as a versioned SavedModel; returns its directory."""
    shape = server.classify.input_signature[0].shape[1:]
    images = np.zeros((2, *shape), np.float32)
    warmup = [("classify", {"images": images}), ("embed", {"images": images})]
    signatures = {
        "serving_default": server.classify,
        "classify": server.classify,
        "embed": server.embed,
    }
    return export.export_for_serving(
        server,
        export_dir,
        model_name,
        signatures,
        warmup,
        version,
        limits=dataclasses.asdict(server.limits),
    )


def export_run(
    run_dir: str,
    export_dir: str,
    model_name: str = MODEL_NAME,
    version: int | None = None,
    limits: MagnetLimits = MagnetLimits(),
) -> str:
    """Exports the magnet model of a finished run; returns the version dir."""
    return export_server(
        load_magnet_run(run_dir, limits), export_dir, model_name, version
    )
