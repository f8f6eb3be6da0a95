"""Flags shared by the mains. Only mains import this module; libraries never do."""

from __future__ import annotations

import os

from absl import flags

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
