"""Table 4/5 over seeds.

`python -m maml.experiments.rl_seed_summary OUT.md RUN_DIR [RUN_DIR ...]`

Reads the `results.json` of runs of one RL experiment that differ only in the seed
and writes a Markdown table: the published value, each seed's mean return over the
test tasks, and the mean and standard deviation over seeds, with each run's status
and budget. Published values come from the run records (i.e. from
`common.published`).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from common import results


def summary_markdown(run_dirs: list[str]) -> str:
    """The seeds table of the runs in `run_dirs`."""
    records = [results.load_results(d) for d in run_dirs]
    seeds = [r["config"]["seed"] for r in records]
    first = records[0]
    lines = [
        f"# {first['experiment']}: {first['cells'][0]['table']} over seeds",
        "",
        "| row | column | published | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean ± std over seeds |",
        "|---|---|---|" + "---|" * len(seeds) + "---|",
    ]
    for i, c in enumerate(first["cells"]):
        vals = [
            r["cells"][i]["ours"]["mean"] if r["cells"][i]["ours"] else None
            for r in records
        ]
        got = [v for v in vals if v is not None]
        agg = f"{np.mean(got):.2f} ± {np.std(got):.2f} (n={len(got)})" if got else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    c["row"],
                    c["column"],
                    f"{c['published']['value']:.2f}",
                    *("-" if v is None else f"{v:.2f}" for v in vals),
                    agg,
                ]
            )
            + " |"
        )
    lines += ["", "Runs:", ""]
    for d, r in zip(run_dirs, records, strict=True):
        budget = ", ".join(f"{k} {v}" for k, v in r["budget"].items() if k != "machine")
        lines.append(
            f"- `{d}`: seed {r['config']['seed']}, status {r['status']}, {budget}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(
            "usage: python -m maml.experiments.rl_seed_summary OUT.md RUN_DIR "
            "[RUN_DIR ...]",
            file=sys.stderr,
        )
        return 2
    out, dirs = (
        argv[1],
        [d for d in argv[2:] if os.path.exists(os.path.join(d, results.RESULTS_FILE))],
    )
    if not dirs:
        print("error: none of the run directories has a results.json", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(summary_markdown(dirs))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
