"""Cost of MAML on a Keras model (`maml.MAML`) against the explicit-weight path.

`python -m benchmarks.maml_keras_wrapper_benchmark` times the paper's sinusoid
meta-iteration (meta-batch 25, K = 10, one inner step, second order, 1-40-40-1
ReLU MLP, Adam) three ways, each with task sampling, inner loop, meta-gradient and
the Adam update in one traced `tf.while_loop`:

* `keras wrapper`: `MAML(keras.Sequential(...)).train_step` with a Keras Adam;
* `explicit weights, same loop`: `meta_learner.meta_gradient` on
  `networks.MLP` with the same Keras Adam and loop (the like-for-like reference);
* `explicit weights, MetaTrainer`: the trainer the sinusoid main uses.

It prints ms per meta-iteration and the wrapper's ratio to the like-for-like
reference (the target is at most 1.5x). Run it alone: other jobs on the 2 cores
distort the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import timing  # noqa: E402
from maml import MAML, meta_learner, networks, tasks  # noqa: E402
from maml.experiments import configs, sinusoid_experiment  # noqa: E402

ITERATIONS = flags.DEFINE_integer("iterations", 2000, "Timed iterations per setting.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats; the best is reported.")
JIT = flags.DEFINE_boolean("jit_compile", True, "Compile the loops with XLA.")


def _sample(i: tf.Tensor) -> tasks.RegressionBatch:
    return tasks.sample_sinusoid_tasks(
        tf.stack([tf.constant(0, tf.int64), tf.cast(i, tf.int64)]), 25, 10, 10
    )


def _loop(step_fn, jit: bool):
    @tf.function(jit_compile=jit)
    def run(n):
        def body(i, loss):
            return i + 1, step_fn(_sample(i))

        return tf.while_loop(
            lambda i, _: i < n, body, (tf.constant(0), tf.constant(0.0))
        )[1]

    return run


def _best_ms(run, iterations: int, repeats: int) -> tuple[float, float]:
    t = time.perf_counter()
    run(tf.constant(2))
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        float(run(tf.constant(iterations)))
        best = min(best, (time.perf_counter() - t) / iterations)
    return first, best * 1e3


def main(argv: list[str]) -> None:
    del argv
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(40, "relu"),
            keras.layers.Dense(40, "relu"),
            keras.layers.Dense(1),
        ]
    )
    maml = MAML(model, meta_learner.mse_per_task, inner_lr=0.01)
    wrapper_opt = keras.optimizers.Adam(1e-3)
    wrapper = _loop(lambda batch: maml.train_step(batch, wrapper_opt), JIT.value)

    mlp = networks.MLP((1, 40, 40, 1))
    variables = [keras.Variable(v) for v in mlp.init_params(0).values()]
    keys = list(mlp.init_params(0))
    explicit_opt = keras.optimizers.Adam(1e-3)

    def explicit_step(batch):
        params = {
            k: tf.convert_to_tensor(v) for k, v in zip(keys, variables, strict=True)
        }
        obj, grads = meta_learner.meta_gradient(
            mlp, params, batch, meta_learner.mse_per_task, 0.01, 1
        )
        explicit_opt.apply_gradients(
            zip([grads[k] for k in keys], variables, strict=True)
        )
        return obj.loss

    explicit = _loop(explicit_step, JIT.value)
    rows = []
    for name, run in (
        ("keras wrapper", wrapper),
        ("explicit weights, same loop", explicit),
    ):
        rows.append((name, *_best_ms(run, ITERATIONS.value, REPEATS.value)))
    trainer = sinusoid_experiment.build_trainer(
        configs.SinusoidConfig(jit_compile=JIT.value), "maml"
    )
    first, per_it = timing.time_trainer(trainer, ITERATIONS.value, REPEATS.value)
    rows.append(("explicit weights, MetaTrainer", first, per_it * 1e3))

    print(
        f"| path (second order, XLA {'on' if JIT.value else 'off'}) | first call (s) "
        "| ms / meta-iteration |"
    )
    print("|---|---|---|")
    for name, first, ms in rows:
        print(f"| {name} | {first:.1f} | {ms:.3f} |")
    ratio = rows[0][2] / rows[1][2]
    print(f"\nwrapper / explicit (same loop): {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    app.run(main)
