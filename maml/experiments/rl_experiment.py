"""The RL reproduction: 2D navigation (App. C Table 4, Fig. 4), half-cheetah
forward/backward (App. C Table 5).

`run(config, run_dir)` trains, in resumable phases, the MAML policy, the
context-vector policy and the Fig. 4 baselines (pretrained, oracle), keeping each
phase's best-return parameters; then evaluates every model on the fixed test
tasks after 0..3 policy-gradient steps and writes `results.json`, `report.md`,
`fig4_adaptation.png` and `learning_curves.png`. Checkpoints, per-iteration
histories and TensorBoard logs live in the run directory; rerunning resumes.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import files, plots, results
from common.checkpoint import Checkpointer
from common.progress import Progress, format_duration
from common.summaries import Summaries
from maml.experiments.rl_configs import PHASES, RLConfig
from maml.rl import envs as rl_envs
from maml.rl import learner as rl_learner
from maml.rl import policy as rl_policy
from maml.rl import sampling as rl_sampling

TABLES = {
    "navigation_2d": "Appendix C Table 4",
    "halfcheetah_dir": "Appendix C Table 5",
}
ROWS = {"maml": "MAML (ours)", "context": "context vector"}
COLUMNS = ("0 steps", "1 step", "2 steps", "3 steps")
LABELS = {
    "maml": "MAML",
    "context": "context vector",
    "pretrained": "pretrained",
    "random": "random init",
    "oracle": "oracle",
}


def make_sampler(cfg: RLConfig, oracle: bool = False):
    """The batched roll-out sampler of the config's task family."""
    if cfg.env == "navigation_2d":
        env = rl_envs.Navigation2D(
            horizon=cfg.horizon, reward=cfg.reward, oracle=oracle
        )
        return rl_sampling.NavigationSampler(env, len(cfg.hidden) + 1)
    from maml.rl import cheetah as rl_cheetah  # noqa: PLC0415 - needs MuJoCo

    return rl_sampling.HostSampler(
        rl_cheetah.HalfCheetahDirection(cfg.horizon), len(cfg.hidden) + 1
    )


def check_environment(cfg: RLConfig) -> None:
    """Raises ValueError with a one-line hint when the environment cannot be made."""
    if cfg.env == "halfcheetah_dir":
        from maml.rl import cheetah as rl_cheetah  # noqa: PLC0415

        try:
            rl_cheetah.HalfCheetahDirection(cfg.horizon)
        except rl_cheetah.MujocoMissingError as e:
            raise ValueError(str(e)) from e


def test_tasks(cfg: RLConfig) -> np.ndarray:
    """The official test tasks: `np.random.seed(1)` then one uniform draw."""
    rs = np.random.RandomState(1)
    if cfg.env == "navigation_2d":
        return rs.uniform(-0.5, 0.5, size=(cfg.eval_tasks, 2)).astype(np.float32)
    goal_vel = rs.uniform(0.0, 2.0, size=(cfg.eval_tasks,))
    return np.where(goal_vel < 1.0, -1.0, 1.0).astype(np.float32)


def make_policy(
    cfg: RLConfig,
    sampler,
    phase: str,
    name: str = "policy",
) -> rl_policy.GaussianMLPPolicy:
    seed = cfg.seed * 10 + PHASES.index(phase) if phase in PHASES else cfg.seed
    return rl_policy.GaussianMLPPolicy(
        sampler.obs_dim,
        sampler.act_dim,
        cfg.hidden,
        context_dim=cfg.context_dim if phase == "context" else 0,
        seed=seed,
        name=name,
    )


def make_learner(cfg: RLConfig, policy) -> rl_learner.RLMetaLearner:
    return rl_learner.RLMetaLearner(
        policy,
        rl_learner.RLHyperparameters(
            alpha=cfg.alpha,
            discount=cfg.discount,
            gae_lambda=cfg.gae_lambda,
            max_kl=cfg.max_kl,
            cg_iterations=cfg.cg_iterations,
            reg_coeff=cfg.reg_coeff,
            backtrack_ratio=cfg.backtrack_ratio,
            max_backtracks=cfg.max_backtracks,
            pretrain_learning_rate=cfg.pretrain_learning_rate,
            hvp=cfg.hvp,
            hvp_subsample=cfg.hvp_subsample,
        ),
    )


class Phase:
    """One resumable training phase: policy, best parameters, history, checkpoint."""

    def __init__(self, cfg: RLConfig, run_dir: str, phase: str):
        self.cfg, self.phase = cfg, phase
        self.sampler = make_sampler(cfg, oracle=phase == "oracle")
        self.policy = make_policy(cfg, self.sampler, phase)
        self.best = make_policy(cfg, self.sampler, phase, name="best")
        self.learner = make_learner(cfg, self.policy)
        variables = [self.policy.variables_by_name[k] for k in self.policy.names]
        self.learner.optimizer.build(variables)
        self.iteration = tf.Variable(0, dtype=tf.int64)
        self.best_return = tf.Variable(-np.inf, dtype=tf.float64)
        self.dir = os.path.join(run_dir, "checkpoints", phase)
        self.ckpt = Checkpointer(
            self.dir,
            policy=self.policy,
            best=self.best,
            iteration=self.iteration,
            best_return=self.best_return,
            optimizer=self.learner.optimizer,
        )
        self.history_path = os.path.join(run_dir, f"history_{phase}.json")
        self.ckpt.restore_latest()
        self.history: dict[str, Any] = {"rows": [], "train_seconds": 0.0}
        if os.path.exists(self.history_path):
            with open(self.history_path) as f:
                self.history = json.load(f)
        done = int(self.iteration.numpy())
        self.history["rows"] = [
            r for r in self.history["rows"] if r["iteration"] < done
        ]

    def save(self) -> None:
        self.ckpt.save(int(self.iteration.numpy()))
        files.atomic_write_json(self.history_path, self.history, indent=None)

    def step(self, it: int) -> dict[str, float]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, PHASES.index(self.phase), it])
        tasks = self.sampler.sample_tasks(rng, cfg.meta_batch_size)
        seed = cfg.seed * 10 + PHASES.index(self.phase)
        if self.phase in ("maml", "context"):
            return self.learner.maml_iteration(
                self.sampler, tasks, cfg.num_traj, seed, it
            )
        if self.phase == "oracle":
            return self.learner.trpo_iteration(
                self.sampler, tasks, cfg.num_traj, seed, it
            )
        return self.learner.pretrain_iteration(
            self.sampler, tasks, cfg.num_traj, seed, it
        )

    def train(self, target: int, deadline: float, log_dir: str) -> bool:
        """Trains up to `target` iterations or the deadline; True when reached."""
        cfg = self.cfg
        start = int(self.iteration.numpy())
        if start >= target:
            return True
        progress = Progress(f"{cfg.experiment}/{self.phase}", target, start)
        summaries = Summaries(log_dir, self.phase)
        key = "post_return" if self.phase in ("maml", "context") else "pre_return"
        t_last = time.perf_counter()
        for it in range(start, target):
            if deadline and time.time() > deadline:
                self.save()
                return False
            stats = self.step(it)
            now = time.perf_counter()
            self.history["train_seconds"] += now - t_last
            t_last = now
            stats["iteration"] = it
            self.history["rows"].append(stats)
            self.iteration.assign(it + 1)
            best = float(self.best_return.numpy())
            if math.isfinite(stats[key]) and stats[key] > best:
                self.best_return.assign(stats[key])
                for k, v in self.best.variables_by_name.items():
                    v.assign(self.policy.variables_by_name[k])
            summaries.scalars(
                it + 1, {k: v for k, v in stats.items() if k != "iteration"}
            )
            if (it + 1) % cfg.log_every == 0 or it + 1 == target:
                progress.update(
                    it + 1,
                    **{
                        k: stats[k]
                        for k in stats
                        if k.endswith("return") or k == "kl_after"
                    },
                )
            if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == target:
                self.save()
        return True


def _evaluate(cfg: RLConfig, phases: dict[str, Phase]) -> dict[str, np.ndarray]:
    """`{model: [steps + 1, eval_tasks] returns}` on the fixed test tasks."""
    tasks = test_tasks(cfg)
    out = {}
    for name, ph in phases.items():
        if int(ph.iteration.numpy()) == 0:
            continue
        steps = () if name == "oracle" else cfg.eval_step_sizes
        out[name] = rl_learner.evaluate_adaptation(
            ph.learner,
            ph.sampler,
            ph.best.params(),
            tasks,
            steps,
            cfg.eval_traj,
            seed=cfg.seed,
        )
    if cfg.random_baseline:
        sampler = make_sampler(cfg)
        policy = make_policy(cfg, sampler, "random", name="random")
        out["random"] = rl_learner.evaluate_adaptation(
            make_learner(cfg, policy),
            sampler,
            policy.params(),
            tasks,
            cfg.eval_step_sizes,
            cfg.eval_traj,
            seed=cfg.seed,
        )
    return out


def deviations(cfg: RLConfig) -> list[str]:
    """Run-wide protocol deviations."""
    out = [
        "exact Hessian-vector products (the official code uses finite differences)",
        "each task gets exactly num_traj episodes with steps after termination "
        "masked (the official sampler collects num_traj x H time steps, "
        "restarting episodes that end early)",
    ]
    if cfg.hvp_subsample < 1.0:
        out.append(
            f"Hessian-vector products on {cfg.hvp_subsample:g} of the "
            "trajectories (official: all)"
        )
    if cfg.env == "navigation_2d" and cfg.reward != "distance":
        out.append(f"reward {cfg.reward} (official code: minus the distance)")
    if cfg.env == "halfcheetah_dir":
        out.append(
            "MuJoCo from the `mujoco` wheel (not MuJoCo 1.31 of rllab) on "
            "Gymnasium's half_cheetah.xml (the same model file); rllab's "
            "task protocol (1 physics step per action, torso centre-of-mass "
            "velocity reward, 20 observations), not HalfCheetah-v5's"
        )
    if cfg.context_dim:
        out.append(
            f"context vector of size {cfg.context_dim} appended to the "
            "observation (size not stated in the paper)"
        )
    return out


def _curves_table(evals: dict[str, np.ndarray]) -> dict[str, Any]:
    rows = []
    for name, arr in evals.items():
        cells = []
        for k in range(len(COLUMNS)):
            if k < arr.shape[0]:
                e = results.mean_ci95(arr[k])
                cells.append(f"{e.mean:.2f} ± {e.ci95:.2f}")
            else:
                cells.append("-")
        rows.append([LABELS[name], *cells])
    return {
        "title": "Fig. 4 data: average return after k policy-gradient steps "
        "(mean ± 95% CI over test tasks)",
        "header": ["model", *COLUMNS],
        "rows": rows,
    }


def _checkpoint_table(phases: dict[str, Phase]) -> dict[str, Any]:
    """Training returns at budget checkpoints (mean over the last 10 iterations)."""
    rows = []
    for name, ph in phases.items():
        hist = ph.history["rows"]
        marks = [
            k for k in (10, 25, 50, 100, 200, 300, 400, 500, 800) if k <= len(hist)
        ]
        if hist and len(hist) not in marks:
            marks.append(len(hist))
        for k in marks:
            window = hist[max(0, k - 10) : k]
            pre = np.mean([r["pre_return"] for r in window])
            post = (
                f"{np.mean([r['post_return'] for r in window]):.2f}"
                if "post_return" in window[0]
                else "-"
            )
            rows.append([LABELS[name], k, f"{pre:.2f}", post])
    return {
        "title": "Learning curve at budget checkpoints: average training return "
        "over the 10 iterations before each checkpoint (training tasks)",
        "header": ["model", "iterations", "pre-update return", "post-update return"],
        "rows": rows,
    }


def _figures(
    cfg: RLConfig, run_dir: str, evals: dict[str, np.ndarray], phases: dict[str, Phase]
) -> list[str]:
    steps = len(cfg.eval_step_sizes)
    curves = {}
    for name, arr in evals.items():
        if arr.shape[0] == 1:  # the oracle: no adaptation, drawn flat
            arr = np.repeat(arr, steps + 1, axis=0)
        ests = [results.mean_ci95(a) for a in arr]
        curves[LABELS[name]] = (
            np.arange(steps + 1),
            [e.mean for e in ests],
            [e.ci95 for e in ests],
        )
    title = (
        "2D navigation (Fig. 4)"
        if cfg.env == "navigation_2d"
        else "half-cheetah forward/backward"
    )
    fig4 = plots.plot_curve_panels(
        os.path.join(run_dir, "fig4_adaptation.png"),
        {title: curves},
        "number of gradient steps",
        "average return",
    )
    panels = {}
    for name, ph in phases.items():
        rows = ph.history["rows"]
        if not rows:
            continue
        x = [r["iteration"] + 1 for r in rows]
        c = {"pre-update": (x, [r["pre_return"] for r in rows], [0.0] * len(x))}
        if "post_return" in rows[0]:
            c["post-update"] = (x, [r["post_return"] for r in rows], [0.0] * len(x))
        panels[LABELS[name]] = c
    figs = [os.path.basename(fig4)]
    if panels:
        lc = plots.plot_curve_panels(
            os.path.join(run_dir, "learning_curves.png"),
            panels,
            "iteration",
            "average return",
        )
        figs.append(os.path.basename(lc))
    return figs


def write_report(
    cfg: RLConfig,
    run_dir: str,
    phases: dict[str, Phase],
    evals: dict[str, np.ndarray],
    complete: bool,
) -> dict[str, Any]:
    """Writes results.json, report.md and the figures from trained phases."""
    targets = cfg.phase_iterations()
    table = TABLES[cfg.env]
    devs = deviations(cfg)
    cells = []
    for phase, row in ROWS.items():
        for k, column in enumerate(COLUMNS):
            ours = None
            budget = None
            if phase in evals and k < evals[phase].shape[0]:
                ours = results.mean_ci95(evals[phase][k])
                ph = phases[phase]
                budget = {
                    "iterations": int(ph.iteration.numpy()),
                    "target_iterations": targets[phase],
                    "train_seconds": round(ph.history["train_seconds"], 1),
                }
            cells.append(results.cell("maml", table, row, column, ours, budget=budget))
    budget = {
        **{
            f"{p}_iterations": f"{int(ph.iteration.numpy())}/{targets[p]}"
            for p, ph in phases.items()
        },
        "train_seconds": round(
            sum(ph.history["train_seconds"] for ph in phases.values()), 1
        ),
        "machine": results.machine_description(),
    }
    figs = _figures(cfg, run_dir, evals, phases)
    np.savez(os.path.join(run_dir, "evaluation.npz"), **evals)
    best = {p: float(ph.best_return.numpy()) for p, ph in phases.items()}
    extra = {
        "tables": [_curves_table(evals), _checkpoint_table(phases)],
        "evaluation": {k: v.tolist() for k, v in evals.items()},
        "best_training_return": best,
        "selection": "each model's parameters with the best average return "
        "during training (post-update for MAML and the context "
        "vector), as the paper selects",
    }
    return results.write_results(
        run_dir,
        paper="maml",
        experiment=cfg.experiment,
        status="complete" if complete else "cut short",
        budget=budget,
        config=config_lib.to_dict(cfg),
        cells=cells,
        deviations=devs,
        figures=figs,
        extra=extra,
    )


def run(cfg: RLConfig, run_dir: str) -> dict[str, Any]:
    """Trains (resuming), evaluates and reports one RL experiment."""
    tf.random.set_seed(cfg.seed)
    deadline = time.time() + 60 * cfg.max_train_minutes if cfg.max_train_minutes else 0
    log_dir = os.path.join(run_dir, "tensorboard")
    phases: dict[str, Phase] = {}
    complete = True
    for phase, target in cfg.phase_iterations().items():
        ph = Phase(cfg, run_dir, phase)
        phases[phase] = ph
        if complete:
            complete = ph.train(target, deadline, log_dir)
            print(
                f"[{cfg.experiment}/{phase}] {int(ph.iteration.numpy())}/{target} "
                f"iterations, {format_duration(ph.history['train_seconds'])} "
                "training",
                flush=True,
            )
    t0 = time.perf_counter()
    evals = _evaluate(cfg, phases)
    print(
        f"[{cfg.experiment}] evaluated in {time.perf_counter() - t0:.0f} s", flush=True
    )
    return write_report(cfg, run_dir, phases, evals, complete)
