"""Regenerates `report.md` of run directories from their `results.json`.

Usage: `python -m common.report RUN_DIR [RUN_DIR ...]`.
"""

from __future__ import annotations

from absl import app

from common import results


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("usage: python -m common.report RUN_DIR [RUN_DIR ...]")
    for run_dir in argv[1:]:
        print(results.regenerate_report(run_dir))


if __name__ == "__main__":
    app.run(main)
