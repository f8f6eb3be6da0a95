"""Exports the magnet model of a finished run for TF Serving.

`python -m magnet.export --run_dir=runs/magnet_classification --export_dir=/models`
writes `/models/magnet/<version>/` (signatures `embed`, `classify`) with warm-up
requests, as `python -m magnet.main ... --export_dir` does, and lets the
per-request limits be changed: `--limit max_batch_size=1024`
(`magnet.serving.MagnetLimits`).
"""

from __future__ import annotations

from absl import app, flags

from common import cli, serving_checks
from magnet import serving

RUN_DIR = flags.DEFINE_string(
    "run_dir",
    "runs/magnet_classification",
    "Run directory written by python -m magnet.main.",
)
EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "exported_models", "TF Serving model base directory parent."
)
MODEL_NAME = flags.DEFINE_string("model_name", serving.MODEL_NAME, "Served model name.")
VERSION = flags.DEFINE_integer("version", None, "Version (default: next free).")
LIMIT = flags.DEFINE_multi_string(
    "limit",
    [],
    "Per-request limit field=value (repeatable), fields of "
    "magnet.serving.MagnetLimits: max_batch_size (default 256).",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    cli.run_export(
        lambda: serving.export_run(
            RUN_DIR.value,
            EXPORT_DIR.value,
            MODEL_NAME.value,
            VERSION.value,
            serving_checks.parse_limits(serving.MagnetLimits, LIMIT.value),
        )
    )


if __name__ == "__main__":
    app.run(main)
