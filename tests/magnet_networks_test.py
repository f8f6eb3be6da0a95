"""The embedding network, its softmax and normalised variants, and the warm start."""

import io

import keras
import numpy as np
import pytest

from magnet import networks
from tests.magnet_fixtures import synthetic_dataset


def _conv_gn(cin, cout):
    return 9 * cin * cout + 2 * cout  # conv (no bias) + group norm (gamma, beta)


def test_embedder_shapes_and_parameter_count():
    model = networks.build_embedder((32, 32, 3), embedding_dim=16)
    out = model(np.zeros((5, 32, 32, 3), np.float32))
    assert out.shape == (5, 16)
    want = _conv_gn(3, 32) + _conv_gn(32, 64) + _conv_gn(64, 128) + 128 * 16 + 16
    assert model.count_params() == want
    two = networks.build_embedder((28, 28, 1), 64, convs_per_stage=2)
    assert two(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 64)


def test_embedder_rescales_pixels():
    model = networks.build_embedder((8, 8, 1), 4, widths=(4,))
    assert isinstance(model.get_layer("rescale"), keras.layers.Rescaling)
    assert model.get_layer("rescale").scale == pytest.approx(1 / 255)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"input_shape": (4, 4, 1)}, "too small"),
        ({"input_shape": (32, 32, 3), "embedding_dim": 0}, "positive"),
        ({"input_shape": (32, 32, 3), "widths": ()}, "positive"),
    ],
)
def test_embedder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        networks.build_embedder(**kwargs)


def test_classifier_shares_the_embedder_and_normalization_adds_no_weights():
    embedder = networks.build_embedder((16, 16, 1), 8)
    classifier = networks.build_classifier(embedder, 5)
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype(np.float32)
    assert classifier(x).shape == (4, 5)
    before = embedder(x, training=False).numpy()
    step = networks.softmax_train_step(classifier, keras.optimizers.Adam(1e-2))
    step(x.astype(np.uint8), np.array([0, 1, 2, 3]))
    assert not np.allclose(before, embedder(x, training=False).numpy())
    normalized = networks.with_l2_normalization(embedder)
    assert normalized.count_params() == embedder.count_params()
    norms = np.linalg.norm(normalized(x, training=False).numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="num_classes"):
        networks.build_classifier(embedder, 1)


def test_epoch_batches_cover_each_epoch_once_and_repeat():
    seen = np.concatenate([networks.epoch_batch(3, s, 10, 50) for s in range(5)])
    assert sorted(seen) == list(range(50))
    np.testing.assert_array_equal(
        networks.epoch_batch(3, 7, 10, 50), networks.epoch_batch(3, 7, 10, 50)
    )
    assert not np.array_equal(
        networks.epoch_batch(3, 0, 10, 50), networks.epoch_batch(3, 5, 10, 50)
    )
    assert networks.warm_start_steps(0, 100, 10) == 0
    assert networks.warm_start_steps(1.5, 100, 10) == 15


def test_warm_start_learns_and_a_rerun_restores_instead_of_training(tmp_path):
    data = synthetic_dataset(num_classes=4, train_per_class=16)
    x, y = data.train_images, data.train_labels

    keras.utils.set_random_seed(0)
    first = networks.build_embedder((16, 16, 1), 8)
    initial = [w.copy() for w in first.get_weights()]
    loop, head = networks.warm_start(
        first,
        x,
        y,
        4,
        epochs=4,
        run_dir=str(tmp_path),
        batch_size=16,
        learning_rate=1e-2,
        stream=io.StringIO(),
    )
    assert loop.steps == 16 and loop.status == "complete"
    assert [w.shape for w in head] == [(8, 4), (4,)]
    assert loop.last_metrics["loss"] < np.log(4)  # Below chance cross-entropy.
    assert not np.allclose(initial[0], first.get_weights()[0])
    second = networks.build_embedder((16, 16, 1), 8)
    stream = io.StringIO()
    loop2, head2 = networks.warm_start(
        second, x, y, 4, epochs=4, run_dir=str(tmp_path), batch_size=16, stream=stream
    )
    assert loop2.sessions == 1 and stream.getvalue() == ""
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(head[0], head2[0])
    assert networks.warm_start(second, x, y, 4, 0, str(tmp_path)) == (None, None)
