"""Seconds per MAML-TRPO meta-iteration: 2D navigation and half-cheetah.

`python -m benchmarks.maml_rl_benchmark` times full meta-iterations (roll-outs
before and after adaptation, baselines, inner step, TRPO meta-step with 10 CG
iterations and the line search) of the `navigation_2d` config (20 tasks x 20
trajectories x 100 steps) and of `halfcheetah_dir` (40 x 20 x 200), for the
Hessian-vector-product settings in `--hvp_subsamples`, and prints seconds per
iteration (split into roll-out and learning time) with the projected time of the
500-iteration protocol. Run it alone: other jobs on the 2 cores distort it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import threads  # noqa: E402
from maml.experiments import rl_configs, rl_experiment  # noqa: E402
from maml.rl import policy as rl_policy  # noqa: E402

ITERATIONS = flags.DEFINE_integer("iterations", 5, "Timed iterations per setting.")
EXPERIMENTS = flags.DEFINE_list(
    "experiments", ["navigation_2d", "halfcheetah_dir"], "Configs to time."
)
SUBSAMPLES = flags.DEFINE_list(
    "hvp_subsamples", ["1.0", "0.2"], "hvp_subsample values to time."
)


def time_config(cfg: rl_configs.RLConfig, iterations: int) -> dict[str, float]:
    """First-call seconds and mean seconds per iteration (total, roll-outs)."""
    sampler = rl_experiment.make_sampler(cfg)
    policy = rl_experiment.make_policy(cfg, sampler, "maml")
    learner = rl_experiment.make_learner(cfg, policy)
    rng = np.random.default_rng(0)

    def one(it):
        return learner.maml_iteration(
            sampler, sampler.sample_tasks(rng, cfg.meta_batch_size), cfg.num_traj, 0, it
        )

    t = time.perf_counter()
    one(0)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for it in range(1, iterations + 1):
        one(it)
    per_it = (time.perf_counter() - t) / iterations
    # Roll-outs alone: one pre-update batch, twice per iteration.
    theta = rl_policy.tile(policy.params(), cfg.meta_batch_size)
    tasks = sampler.sample_tasks(rng, cfg.meta_batch_size)
    sampler.rollouts(theta, tasks, cfg.num_traj, (1, 0))
    t = time.perf_counter()
    for it in range(2):
        sampler.rollouts(theta, tasks, cfg.num_traj, (1, it + 1))
    rollouts = time.perf_counter() - t
    return {"first": first, "per_it": per_it, "rollouts": rollouts}


def main(argv: list[str]) -> None:
    del argv
    print(threads.apply(), "\n")  # before any op: the first op fixes the pools
    print(
        "| experiment | hvp_subsample | first call (s) | s / meta-iteration "
        "| of which roll-outs (s) | 500 iterations |"
    )
    print("|---|---|---|---|---|---|")
    for name in EXPERIMENTS.value:
        for sub in SUBSAMPLES.value:
            cfg = dataclasses.replace(
                rl_configs.RL_EXPERIMENTS[name], hvp_subsample=float(sub)
            )
            r = time_config(cfg, ITERATIONS.value)
            print(
                f"| {name} | {float(sub):g} | {r['first']:.1f} | {r['per_it']:.2f} | "
                f"{r['rollouts']:.2f} | {r['per_it'] * 500 / 60:.1f} min |",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
