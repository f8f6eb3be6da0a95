"""Multi-task baseline (App. C.1): regularisers, averaging, block order vs NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from maml import multitask_baseline as mb
from maml import networks


def _params(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w0": rng.normal(size=(n, 1, 3)),
        "b0": rng.normal(size=(n, 3)),
        "w1": rng.normal(size=(n, 3, 1)),
        "b1": rng.normal(size=(n, 1)),
    }


def test_regularisers_match_numpy():
    p = _params()
    anchor = {k: v[0] * 0.5 + 0.1 for k, v in _params(seed=1).items()}
    tf_p = {k: tf.constant(v) for k, v in p.items()}
    tf_a = {k: tf.constant(v) for k, v in anchor.items()}
    flat = np.concatenate([v.reshape(4, -1) for v in p.values()], axis=1)
    flat_anchor = np.concatenate([v.ravel() for v in anchor.values()])
    np.testing.assert_allclose(mb.regulariser(tf_p, "none", 3.0).numpy(), 0.0)
    np.testing.assert_allclose(
        mb.regulariser(tf_p, "l2", 0.3).numpy(), 0.3 * np.sum(flat**2, axis=1)
    )
    np.testing.assert_allclose(
        mb.regulariser(tf_p, "mean", 0.3, tf_a).numpy(),
        0.3 * np.sum((flat - flat_anchor) ** 2, axis=1),
    )
    with pytest.raises(ValueError):
        mb.regulariser(tf_p, "mean", 0.3)
    with pytest.raises(ValueError):
        mb.regulariser(tf_p, "l1", 0.3)


def test_average_parameters_is_the_mean_over_regressors():
    p = _params(n=5)
    avg = mb.average_parameters(p)
    for k, v in p.items():
        np.testing.assert_allclose(avg[k].numpy(), v.mean(axis=0))
        assert avg[k].shape == v.shape[1:]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 500])
def test_sequential_blocks_cover_in_order_and_never_outgrow_the_past(n):
    blocks = mb.sequential_blocks(n)
    assert blocks[0] == (0, 1)
    assert [b[0] for b in blocks[1:]] == [b[1] for b in blocks[:-1]]
    assert blocks[-1][1] == n
    for start, end in blocks[1:]:
        assert 1 <= end - start <= start


def test_grid_errors_match_a_numpy_forward_pass():
    net = networks.MLP((1, 5, 5, 1))
    p = mb.he_normal_params(net, 3, seed=2, dtype=tf.float64)
    amp, ph = np.array([1.0, 2.0, 4.5]), np.array([0.0, 1.0, 3.0])
    got = mb.grid_errors(net, p, tf.constant(amp), tf.constant(ph))
    x = np.linspace(-5, 5, mb.GRID_POINTS)[:, None]
    for i in range(3):
        h = np.maximum(x @ p["w0"][i].numpy() + p["b0"][i].numpy(), 0)
        h = np.maximum(h @ p["w1"][i].numpy() + p["b1"][i].numpy(), 0)
        out = (h @ p["w2"][i].numpy() + p["b2"][i].numpy())[:, 0]
        want = np.mean((out - amp[i] * np.sin(x[:, 0] - ph[i])) ** 2)
        assert got[i] == pytest.approx(want, rel=1e-10)


def test_he_initialisation_scale_and_independence():
    net = networks.MLP((1, 40, 40, 1))
    p = mb.he_normal_params(net, 200, seed=0, dtype=tf.float64)
    w1 = p["w1"].numpy()
    assert w1.shape == (200, 40, 40)
    assert np.std(w1) == pytest.approx(np.sqrt(2 / 40), rel=0.02)
    assert not np.allclose(w1[0], w1[1])
    np.testing.assert_array_equal(p["b0"].numpy(), 0.0)


def test_regressors_stop_at_the_target_and_report_their_true_error():
    net = networks.MLP((1, 8, 8, 1))
    init = mb.he_normal_params(net, 3, seed=1)
    amp, ph = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.0])
    done = mb.train_regressors(
        net,
        init,
        amp,
        ph,
        "none",
        0.0,
        mb.RegressorTraining(target_mse=1e9, max_steps=200, check_every=100),
        seed=0,
    )
    np.testing.assert_array_equal(done.steps, 0)  # already below: untouched
    np.testing.assert_array_equal(done.params["w0"], init["w0"].numpy())
    run = mb.train_regressors(
        net,
        init,
        amp,
        ph,
        "l2",
        1e-3,
        mb.RegressorTraining(target_mse=1e-9, max_steps=200, check_every=100),
        seed=0,
    )
    np.testing.assert_array_equal(run.steps, 200)
    assert run.num_below_target == 0
    again = mb.grid_errors(
        net,
        {k: tf.constant(v) for k, v in run.params.items()},
        tf.constant(amp, tf.float32),
        tf.constant(ph, tf.float32),
    )
    np.testing.assert_allclose(run.errors, again, rtol=1e-6)
    assert np.all(
        run.errors
        < mb.grid_errors(
            net, init, tf.constant(amp, tf.float32), tf.constant(ph, tf.float32)
        )
    )


def test_mean_variant_pulls_each_block_to_the_mean_of_all_earlier_regressors(
    monkeypatch,
):
    net = networks.MLP((1, 4, 1))
    seen = []

    def fake_train(
        net, init, amplitude, phase, kind, weight, training, seed, anchor=None
    ):
        seen.append(
            (
                kind,
                None if anchor is None else {k: np.array(v) for k, v in anchor.items()},
            )
        )
        params = {k: np.array(v) + len(seen) for k, v in init.items()}
        return mb.TrainedRegressors(
            params, np.zeros(len(amplitude)), np.zeros(len(amplitude), np.int64), 0.02
        )

    monkeypatch.setattr(mb, "train_regressors", fake_train)
    amp, ph = np.linspace(1, 2, 7), np.linspace(0, 1, 7)
    out = mb.train_multitask(net, amp, ph, "mean", 0.1, mb.RegressorTraining(), 3)
    init = mb.he_normal_params(net, 7, 3)
    blocks = mb.sequential_blocks(7)
    assert [k for k, _ in seen] == ["none"] + ["mean"] * (len(blocks) - 1)
    final = out.params
    for (start, _), (_, anchor) in zip(blocks[1:], seen[1:], strict=True):
        for k in init:
            np.testing.assert_allclose(anchor[k], final[k][:start].mean(axis=0))
    assert out.params["w0"].shape == (7, 1, 4)


def test_min_steps_keeps_training_regressors_already_below_the_target():
    net = networks.MLP((1, 8, 8, 1))
    init = mb.he_normal_params(net, 2, seed=4)
    amp, ph = np.array([1.0, 2.0]), np.array([0.5, 1.0])
    run = mb.train_regressors(
        net,
        init,
        amp,
        ph,
        "none",
        0.0,
        mb.RegressorTraining(
            target_mse=1e9,
            max_steps=400,
            check_every=100,
            min_steps=200,
            jit_compile=False,
        ),
        seed=0,
    )
    np.testing.assert_array_equal(run.steps, 200)
    assert not np.allclose(run.params["w0"], init["w0"].numpy())
