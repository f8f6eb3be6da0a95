"""Exports a trained MAML run for TF Serving.

`python -m maml.export --run_dir=runs/sinusoid --export_dir=/models` writes
`/models/maml_sinusoid/<version>/` with the signatures `predict` and
`adapt_and_predict` and warm-up requests. `--limit field=value` (repeatable) changes
the per-request limits the signatures enforce (`maml.serving.FewShotLimits`), e.g.
`--limit max_num_steps=200 --limit max_query_size=5000`.
"""

from __future__ import annotations

from absl import app, flags

from common import cli, serving_checks
from maml import serving
from maml.experiments import export

RUN_DIR = flags.DEFINE_string(
    "run_dir", "runs/sinusoid", "Run directory written by python -m maml.main."
)
EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "exported_models", "TF Serving model base directory parent."
)
MODEL_NAME = flags.DEFINE_string(
    "model_name", None, "Served model name (default maml_<experiment>)."
)
VERSION = flags.DEFINE_integer("version", None, "Version (default: next free).")
LIMIT = flags.DEFINE_multi_string(
    "limit",
    [],
    "Per-request limit field=value (repeatable), fields of "
    "maml.serving.FewShotLimits: max_num_steps (default 100), max_support_size, "
    "max_query_size.",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    cli.run_export(
        lambda: export.export_run(
            RUN_DIR.value,
            EXPORT_DIR.value,
            MODEL_NAME.value,
            VERSION.value,
            serving_checks.parse_limits(serving.FewShotLimits, LIMIT.value),
        )
    )


if __name__ == "__main__":
    app.run(main)
