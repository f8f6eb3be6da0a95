"""The paper's sigma^2 (running average of training estimates) and the fit path.

References are independent NumPy transcriptions: the batch variance
sum |r - mu(r)|^2 / (N - 1) around in-batch cluster means, and the exponential
moving average / arithmetic mean written as closed-form weighted sums.
"""

import numpy as np
import pytest

from magnet import batch_stats, cluster_index, embedding, kmeans_callback, loss, sampler
from tests.magnet_fixtures import synthetic_dataset


def numpy_batch_sigma2(embeddings: np.ndarray, m: int, d: int) -> float:
    groups = embeddings.reshape(m, d, -1).astype(np.float64)
    centred = groups - groups.mean(axis=1, keepdims=True)
    return float(np.sum(centred**2) / (m * d - 1))


def closed_form_ema(values: np.ndarray, decay: float) -> float:
    """a_T = decay^(T-1) s_1 + sum_{t>=2} (1 - decay) decay^(T-t) s_t."""
    t = len(values)
    weights = (1 - decay) * decay ** (t - 1 - np.arange(t))
    weights[0] = decay ** (t - 1)
    return float(np.sum(weights * values))


@pytest.mark.parametrize("decay", [0.9, 0.99, None])
def test_running_average_matches_numpy(decay):
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 5.0, size=37)
    expected = (
        float(np.mean(values)) if decay is None else closed_form_ema(values, decay)
    )
    assert batch_stats.running_average(values, decay) == pytest.approx(
        expected, rel=1e-12
    )
    callback = batch_stats.Sigma2RunningAverage(decay=decay)
    assert np.isnan(callback.value)
    for v in values:
        callback.on_train_batch_end(0, {"sigma2": v})
    assert callback.value == pytest.approx(expected, rel=1e-12)
    assert int(callback.count.numpy()) == len(values)


def test_batch_stats_metric_holds_the_batch_variance_and_losses():
    m, d = 3, 4
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(m * d, 5)).astype(np.float32)
    labels = np.repeat(np.arange(m), d)
    metric = batch_stats.MagnetBatchStats(m, d, alpha=0.5)
    metric.update_state(labels, emb)
    metric.reset_state()  # Keras resets per epoch; the last batch stays.
    assert float(metric.result()) == pytest.approx(
        numpy_batch_sigma2(emb, m, d), rel=1e-5
    )
    expected, _, _ = loss.magnet_loss_terms(emb, labels, m, d, 0.5)
    np.testing.assert_allclose(
        metric.example_losses.numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_the_readme_fit_example_trains_with_sampler_and_callbacks():
    """model.fit on the sampler's dataset with the library's callbacks."""
    import keras

    from magnet import networks

    data = synthetic_dataset(num_classes=4, train_per_class=12, test_per_class=2)
    x, y = data.train_images, data.train_labels
    keras.utils.set_random_seed(0)
    model = networks.build_embedder(x.shape[1:], 8)
    m, d, k = 4, 3, 2
    magnet_loss = loss.MagnetLoss(m, d, alpha=1.0)
    stats = batch_stats.MagnetBatchStats.like(magnet_loss)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=magnet_loss, metrics=[stats]
    )
    index = cluster_index.ClusterIndex.build(embedding.embed_all(model, x), y, k)
    batches = sampler.MagnetSampler(x, y, index, m, d)
    refresh = kmeans_callback.ClusterRefreshCallback(batches, every=3, unit="step")
    sigma2 = batch_stats.Sigma2RunningAverage(stats)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(logs["sigma2"]))

    history = model.fit(
        batches.dataset(prefetch=None),
        steps_per_epoch=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[
            sampler.LossRecorderCallback(batches, magnet_loss, stats=stats),
            sigma2,
            refresh,
            Watch(),
        ],
    )
    assert len(history.history["loss"]) == 2
    assert refresh.refreshes == 2  # after steps 3 and 6
    # Losses of trained examples reached the index; the others keep 1.0.
    assert np.any(index.example_losses != 1.0)
    # The callback's average is the EMA of the per-step sigma^2 fit logged.
    assert sigma2.value == pytest.approx(
        closed_form_ema(np.array(seen), batch_stats.DEFAULT_DECAY), rel=1e-6
    )
