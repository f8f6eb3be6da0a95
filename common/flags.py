"""Flags shared by the mains. Only mains import this module; libraries never do."""

from __future__ import annotations

import os

from absl import flags

from common import distribute

OUTPUT_DIR = flags.DEFINE_string(
    "output_dir",
    None,
    "Run directory: config.json, checkpoints, TensorBoard logs, results.json, "
    "report.md and figures go here. Rerunning on the same directory resumes. "
    "Default: runs/<experiment>.",
)
SEED = flags.DEFINE_integer("seed", 0, "Seed of the run; one seed repeats exactly.")
DATA_DIR = flags.DEFINE_string(
    "data_dir",
    os.environ.get("REPRO_DATA_DIR", "../shared/data"),
    "Folder holding the datasets (default: $REPRO_DATA_DIR or ../shared/data).",
)
EXPORT_DIR = flags.DEFINE_string(
    "export_dir",
    None,
    "If set, also export the trained model as a TF Serving SavedModel under "
    "<export_dir>/<model_name>/<version>/.",
)
DISTRIBUTE = flags.DEFINE_enum(
    "distribute",
    "none",
    list(distribute.STRATEGIES),
    "Split every training batch across devices with tf.distribute (mirrored: all "
    "local devices; multi_worker: the cluster in $TF_CONFIG). MAML: classification "
    "meta-batches; Neural ODEs: the mnist experiment; magnet: every loss.",
)
NUM_ITERATIONS = flags.DEFINE_string(
    "num_iterations",
    None,
    "Training length in iterations (optimizer steps; MAML: meta-iterations), the "
    "same flag in every main. Each experiment maps it to its own config field: "
    "MAML num_iterations, Neural ODE spirals latent_iterations, MNIST epochs "
    "(iterations / steps per epoch), magnet steps. Default: the experiment's own.",
)
