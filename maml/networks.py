"""Networks whose weights are explicit tensors.

MAML needs to evaluate a network at *fast weights* (the meta-parameters after a few
inner gradient steps) while keeping the graph from the meta-parameters to the fast
weights intact, so that the outer tape can differentiate through the inner updates.
Re-assigning Keras variables would cut that graph, so every network here is a pure
function `apply(params, x)` of an explicit parameter dictionary.

All networks are evaluated on a *batch of tasks* at once: every parameter carries a
leading task axis `[T, ...]` and inputs are `[T, N, ...]`. Meta-parameters without a
task axis are broadcast with `tile_params`. Batching the tasks turns the per-task
loop of the reference implementations into a handful of batched matmuls, which is
what makes a meta-iteration cheap on a CPU.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

Params = dict[str, tf.Tensor]


class FunctionalNetwork(abc.ABC):
    """A network defined by an initialiser and a pure apply function.

    Networks with batch norm normalise with the statistics of the examples they
    are given, per task; setting `bn_stats_examples = n` takes the statistics from
    the first n examples only (non-transductive evaluation: support statistics for
    query examples appended after the support set).
    """

    bn_stats_examples: int | None = None

    @abc.abstractmethod
    def init_params(self, seed: int, dtype: tf.DType = tf.float32) -> Params:
        """Returns freshly initialised parameters, without a task axis.

        Args:
            seed: Seed of the initialisation; the same seed gives the same values.
            dtype: Floating dtype of the parameters.
        """

    @property
    def adapted_keys(self) -> tuple[str, ...] | None:
        """Names of the parameters the inner loop updates; None means all."""
        return None

    @abc.abstractmethod
    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """Evaluates the network for a batch of tasks.

        Args:
            params: Parameters with a leading task axis, `[T, ...]` each.
            x: Inputs `[T, N, ...]`, N examples for each of the T tasks.

        Returns:
            Outputs `[T, N, output_dim]`.
        """


def tile_params(params: Mapping[str, tf.Tensor], num_tasks: int | tf.Tensor) -> Params:
    """Gives every parameter a leading task axis of size `num_tasks`."""
    return {
        name: tf.tile(p[tf.newaxis], [num_tasks] + [1] * len(p.shape))
        for name, p in params.items()
    }


def truncated_normal(
    rng: np.random.Generator, shape: Sequence[int], stddev: float
) -> np.ndarray:
    """Normal samples redrawn until within two standard deviations (as TF's)."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class MLP(FunctionalNetwork):
    """Fully connected ReLU network, such as MAML's 1-40-40-1 sinusoid regressor.

    Weights are initialised as the official MAML code initialises its fully
    connected networks: truncated normal with standard deviation 0.01, zero biases.
    Hidden layers use ReLU; the output layer is linear. Inputs with more than one
    trailing axis (images) are flattened.

    With `batch_norm`, every hidden layer is followed by batch norm over the
    task's examples (learned offset, no scale; batch statistics), as the official
    non-convolutional Omniglot network; the offsets are not adapted by the inner
    loop.

    With `low_rank_first_layer`, the inner loop keeps the first layer's fast weight
    in factored form instead of a per-task copy of the (large) weight matrix. An
    SGD step on task t changes it by -alpha X_t^T D_t, where X_t holds the step's
    inputs and D_t the loss gradient at the layer's pre-activations; so after any
    number of steps W0_t = W0 + B_t^T A_t, with B_t the inputs of all steps so far
    (`w0_basis`, `[T, S, in]`) and A_t the stacked -alpha D_t (`w0_coef`,
    `[T, S, out]`), and x W0_t = x W0 + (x B_t^T) A_t. The function, its gradients
    and MAML's meta-gradient are unchanged (the tests compare them with the plain
    form); only the cost shrinks. `meta_learner.inner_update` makes these steps.
    Since w0 itself is never adapted in this form, every task holds the same copy
    (the tiled meta-parameters) and the layer multiplies by the first copy: one
    shared matmul instead of a per-task one (XLA then never materialises the
    tiled copy). Callers must not pass different per-task w0.

    Args:
        layer_sizes: Widths from input to output, e.g. `(1, 40, 40, 1)`.
        init_stddev: Standard deviation of the truncated-normal weight init.
        batch_norm: Batch norm after each hidden layer.
        bn_epsilon: Batch-norm epsilon.
        low_rank_first_layer: Keep the first layer's inner-loop updates factored.

    Example:
        >>> import tensorflow as tf
        >>> net = MLP((1, 40, 40, 1))
        >>> params = net.init_params(seed=0)  # explicit weights, no task axis
        >>> sorted(params)
        ['b0', 'b1', 'b2', 'w0', 'w1', 'w2']
        >>> net.num_parameters() == (1 * 40 + 40) + (40 * 40 + 40) + (40 * 1 + 1)
        True
        >>> x = tf.zeros([3, 5, 1])  # 3 tasks of 5 points each
        >>> net.apply(tile_params(params, 3), x).shape  # one weight copy per task
        TensorShape([3, 5, 1])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (1, 40, 40, 1),
        init_stddev: float = 0.01,
        batch_norm: bool = False,
        bn_epsilon: float = 1e-3,
        low_rank_first_layer: bool = False,
    ):
        if len(layer_sizes) < 2 or any(int(s) <= 0 for s in layer_sizes):
            raise ValueError(
                f"layer_sizes must be >= 2 positive widths, got {layer_sizes}"
            )
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        self.init_stddev = float(init_stddev)
        self.batch_norm = bool(batch_norm)
        self.bn_epsilon = float(bn_epsilon)
        self.low_rank_first_layer = bool(low_rank_first_layer)
        self.bn_stats_examples = None

    def __eq__(self, other) -> bool:
        return isinstance(other, MLP) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((MLP, self._key()))

    def _key(self):
        return (
            self.layer_sizes,
            self.init_stddev,
            self.batch_norm,
            self.bn_epsilon,
            self.bn_stats_examples,
            self.low_rank_first_layer,
        )

    @property
    def adapted_keys(self) -> tuple[str, ...] | None:
        if not self.batch_norm:
            return None
        return tuple(k for k in self.init_params(0) if not k.startswith("bn"))

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def init_params(self, seed: int, dtype: tf.DType = tf.float32) -> Params:
        rng = np.random.default_rng(seed)
        params: Params = {}
        for i, (fan_in, fan_out) in enumerate(
            zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True)
        ):
            params[f"w{i}"] = tf.constant(
                truncated_normal(rng, (fan_in, fan_out), self.init_stddev), dtype
            )
            params[f"b{i}"] = tf.zeros([fan_out], dtype)
            if self.batch_norm and i < self.num_layers - 1:
                params[f"bn{i}_beta"] = tf.zeros([fan_out], dtype)
        return params

    def flat_inputs(self, x: tf.Tensor) -> tf.Tensor:
        """Inputs as `[T, N, in]` (images flattened)."""
        if len(x.shape) > 3:
            return tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], self.layer_sizes[0]])
        return x

    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        return self.apply_with_first_preactivation(params, x)[0]

    def apply_with_first_preactivation(
        self, params: Mapping[str, tf.Tensor], x: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The outputs and the first layer's pre-activations `[T, N, width]`."""
        h = self.flat_inputs(x)
        first = None
        for i in range(self.num_layers):
            if i == 0 and self.low_rank_first_layer:
                # w0 is never adapted here: every task holds the same copy.
                z = (
                    tf.tensordot(h, params["w0"][0], axes=1)
                    + params["b0"][:, tf.newaxis, :]
                )
            else:
                # [T, N, in] @ [T, in, out] + [T, 1, out]
                z = tf.matmul(h, params[f"w{i}"]) + params[f"b{i}"][:, tf.newaxis, :]
            if i == 0 and "w0_coef" in params:  # factored inner-loop updates
                z = z + tf.matmul(
                    tf.matmul(h, params["w0_basis"], transpose_b=True),
                    params["w0_coef"],
                )
            if i == 0:
                first = z
            h = z
            if i < self.num_layers - 1:
                if self.batch_norm:
                    stats = (
                        h
                        if self.bn_stats_examples is None
                        else h[:, : self.bn_stats_examples]
                    )
                    mean, var = batch_moments(stats, axes=[1])
                    h = (h - mean) * tf.math.rsqrt(var + self.bn_epsilon) + params[
                        f"bn{i}_beta"
                    ][:, tf.newaxis, :]
                h = tf.nn.relu(h)
        return h, first

    def num_parameters(self) -> int:
        """Number of scalar parameters."""
        sizes = self.layer_sizes
        bn = sum(sizes[1:-1]) if self.batch_norm else 0
        return bn + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def batch_moments(x: tf.Tensor, axes: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and (biased) variance over `axes`, differentiable to any order.

    `tf.nn.moments` stops the gradient through the mean inside its variance.
    That leaves first derivatives intact (the term it drops has zero first
    derivative) but makes second derivatives wrong, and MAML's meta-gradient
    differentiates batch norm twice. This version keeps the whole graph.
    """
    mean = tf.reduce_mean(x, axis=axes, keepdims=True)
    var = tf.reduce_mean(tf.square(x - mean), axis=axes, keepdims=True)
    return mean, var


def glorot_uniform(
    rng: np.random.Generator, shape: Sequence[int], fan_in: int, fan_out: int
) -> np.ndarray:
    """Glorot/Xavier uniform samples (TF's xavier_initializer)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _same_padding(size: int, stride: int, kernel: int = 3) -> tuple[int, int, int]:
    """TF 'SAME' padding: (pad_before, pad_after, output_size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


@functools.cache
def grouped_convolution_differentiable() -> bool:
    """Whether this TensorFlow build differentiates grouped convolutions.

    TF's oneDNN CPU kernels (on by default on x86 Linux) and cuDNN do; TF's own
    CPU kernels do not ("Gradients for grouped convolutions are not supported on
    CPU"), e.g. with `TF_ENABLE_ONEDNN_OPTS=0` or on ARM. Probed once, eagerly
    (also when first called while tracing), by running both gradient kernels of
    a tiny float32 convolution with two groups of two channels.
    """
    with tf.init_scope():  # eager; it pauses tapes, so the kernels run directly
        x = tf.zeros([1, 4, 4, 4])
        w = tf.zeros([3, 3, 2, 4])
        dy = tf.nn.conv2d(x, w, 1, "SAME")
        strides = [1, 1, 1, 1]
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x),
                filter=w,
                out_backprop=dy,
                strides=strides,
                padding="SAME",
            )
            tf.raw_ops.Conv2DBackpropFilter(
                input=x,
                filter_sizes=tf.shape(w),
                out_backprop=dy,
                strides=strides,
                padding="SAME",
            )
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True


def fastest_per_task_conv() -> str:
    """The batched inner loop's convolution: "grouped" where it can be trained
    (see `grouped_convolution_differentiable`), otherwise "patches"."""
    return "grouped" if grouped_convolution_differentiable() else "patches"


def conv3x3_per_task(
    x: tf.Tensor, w: tf.Tensor, stride: int, impl: str = "im2col"
) -> tf.Tensor:
    """3x3 'SAME' convolution with a different filter bank for every task.

    Args:
        x: `[T, B, H, W, C]` inputs, B images for each of T tasks.
        w: `[T, 3, 3, C, F]` per-task filters.
        stride: 1 or 2.
        impl: "im2col" gathers the nine shifted views of the padded input with
            strided slices and contracts them with one batched matmul (pure slicing
            and matmul, any dtype, differentiable to any order); "patches" does
            the im2col with a depthwise convolution of one-hot kernels; "grouped"
            folds the tasks into channels and runs one grouped convolution with T
            groups (oneDNN, float32 only: TF has no CPU gradient for grouped
            convolutions in float64; the fastest here without XLA, very slow
            under XLA).

    Returns:
        `[T, B, H', W', F]`.
    """
    t, b, h, wd, c = (tf.shape(x)[i] for i in range(5))
    c_static, f_static = x.shape[-1], w.shape[-1]
    if impl == "grouped":
        xg = tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), [b, h, wd, t * c])
        wg = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]), [3, 3, c, t * w.shape[-1]])
        y = tf.nn.conv2d(xg, wg, strides=stride, padding="SAME")
        shape = tf.shape(y)
        y = tf.reshape(y, [b, shape[1], shape[2], t, f_static])
        return tf.transpose(y, [3, 0, 1, 2, 4])
    if impl == "patches":
        # im2col by a depthwise convolution with a fixed one-hot kernel: output
        # channel c * 9 + k holds tap k = 3 * dy + dx of input channel c.
        eye = tf.reshape(tf.eye(9, dtype=x.dtype), [3, 3, 1, 9])
        kernel = tf.tile(eye, [1, 1, c_static, 1])
        flat = tf.reshape(x, [t * b, x.shape[2], x.shape[3], c_static])
        patches = tf.nn.depthwise_conv2d(flat, kernel, [1, stride, stride, 1], "SAME")
        out_h, out_w = patches.shape[1], patches.shape[2]
        patches = tf.reshape(patches, [t, b * out_h * out_w, 9 * c_static])
        w_rows = tf.reshape(
            tf.transpose(w, [0, 3, 1, 2, 4]), [t, 9 * c_static, f_static]
        )
        y = tf.matmul(patches, w_rows)
        return tf.reshape(y, [t, b, out_h, out_w, f_static])
    if impl != "im2col":
        raise ValueError(f"unknown conv impl {impl!r}")
    height, width = x.shape[2], x.shape[3]
    top, bottom, out_h = _same_padding(height, stride)
    left, right, out_w = _same_padding(width, stride)
    xp = tf.pad(x, [[0, 0], [0, 0], [top, bottom], [left, right], [0, 0]])
    views = [
        xp[
            :,
            :,
            dy : dy + stride * (out_h - 1) + 1 : stride,
            dx : dx + stride * (out_w - 1) + 1 : stride,
            :,
        ]
        for dy in range(3)
        for dx in range(3)
    ]
    patches = tf.concat(views, axis=-1)  # [T, B, out_h, out_w, 9C], (dy, dx, c)
    patches = tf.reshape(patches, [t, b * out_h * out_w, 9 * c_static])
    y = tf.matmul(patches, tf.reshape(w, [t, 9 * c_static, f_static]))
    return tf.reshape(y, [t, b, out_h, out_w, f_static])


class Conv4(FunctionalNetwork):
    """MAML's conv4: 4 x (3x3 conv, batch norm, ReLU), then a linear head.

    As the official MAML code:
    - Omniglot: 64 filters, stride-2 convolutions, head = spatial mean then
      linear; MiniImagenet: 32 filters, stride-1 convolutions each followed by 2x2
      max-pooling, head = flatten (5x5x32) then linear.
    - Conv filters Glorot-uniform, biases zero; the head weight is standard normal
      for Omniglot and Glorot-uniform for MiniImagenet.
    - Batch norm has a learned offset (beta) and no scale. It normalises with the
      statistics of the batch it is given, per task (the official code never uses
      running averages: transductive at meta-test too). The betas are
      meta-parameters that the inner loop does not adapt (the official code keeps
      them outside its fast-weight dictionary).

    Args:
        num_classes: N, outputs of the head.
        image_size: Input height = width.
        channels: Input channels.
        filters: Filters per conv layer.
        downsample: "stride" (stride-2 convs) or "maxpool" (2x2 max-pool).
        head: "mean" (spatial mean) or "flatten".
        head_init: "normal" (std 1) or "glorot".
        conv_impl: "native" (default) evaluates each task with TF's own
            convolution, fused batch norm and max-pool kernels (oneDNN on x86: the
            fast path on CPU, float32 only); "im2col", "patches" or "grouped"
            evaluate all tasks at once with `conv3x3_per_task` and moment-based
            batch norm (the same function; "im2col" in any dtype, used by the
            float64 gradient tests; "grouped" is the trainer's inner loop).
        bn_epsilon: Batch-norm epsilon (tf.contrib's default 1e-3).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 28,
        channels: int = 1,
        filters: int = 64,
        downsample: str = "stride",
        head: str = "mean",
        head_init: str = "normal",
        conv_impl: str = "native",
        bn_epsilon: float = 1e-3,
    ):
        if downsample not in ("stride", "maxpool") or head not in ("mean", "flatten"):
            raise ValueError(f"bad downsample/head: {downsample}/{head}")
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.filters = int(filters)
        self.downsample = downsample
        self.head = head
        self.head_init = head_init
        self.conv_impl = conv_impl
        self.bn_epsilon = float(bn_epsilon)
        self.bn_stats_examples = None

    def _key(self):
        return (
            self.num_classes,
            self.image_size,
            self.channels,
            self.filters,
            self.downsample,
            self.head,
            self.head_init,
            self.conv_impl,
            self.bn_epsilon,
            self.bn_stats_examples,
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Conv4) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((Conv4, self._key()))

    @property
    def adapted_keys(self) -> tuple[str, ...]:
        """Parameters the inner loop updates (all but the batch-norm offsets)."""
        return tuple(k for k in self._shapes() if not k.startswith("bn"))

    def feature_size(self) -> int:
        """Width of the head's input."""
        if self.head == "mean":
            return self.filters
        size = self.image_size
        for _ in range(4):
            size = size // 2 if self.downsample == "maxpool" else -(-size // 2)
        return size * size * self.filters

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        cin = self.channels
        for i in range(4):
            shapes[f"conv{i}_w"] = (3, 3, cin, self.filters)
            shapes[f"conv{i}_b"] = (self.filters,)
            shapes[f"bn{i}_beta"] = (self.filters,)
            cin = self.filters
        shapes["out_w"] = (self.feature_size(), self.num_classes)
        shapes["out_b"] = (self.num_classes,)
        return shapes

    def num_parameters(self) -> int:
        return sum(int(np.prod(s)) for s in self._shapes().values())

    def init_params(self, seed: int, dtype: tf.DType = tf.float32) -> Params:
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in self._shapes().items():
            if name.endswith("_w") and name.startswith("conv"):
                value = glorot_uniform(rng, shape, 9 * shape[2], 9 * shape[3])
            elif name == "out_w":
                value = (
                    rng.standard_normal(shape)
                    if self.head_init == "normal"
                    else glorot_uniform(rng, shape, shape[0], shape[1])
                )
            else:
                value = np.zeros(shape)
            params[name] = tf.constant(value, dtype)
        return params

    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        if self.conv_impl == "native" and self.bn_stats_examples is None:
            # Tasks are unrolled (T is static; the per-task trainer passes T = 1).
            return tf.stack(
                [
                    self._apply_one({k: v[i] for k, v in params.items()}, x[i])
                    for i in range(x.shape[0])
                ]
            )
        return self._apply_batched(params, x)

    def _apply_one(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """One task: x `[B, H, W, C]` with 4-D kernels; returns `[B, N]` logits."""
        h = x
        stride = 2 if self.downsample == "stride" else 1
        ones = tf.ones([self.filters], x.dtype)
        for i in range(4):
            h = tf.nn.conv2d(h, params[f"conv{i}_w"], strides=stride, padding="SAME")
            h = h + params[f"conv{i}_b"]
            # Training-mode fused batch norm: batch statistics, scale fixed at 1.
            h, _, _ = tf.compat.v1.nn.fused_batch_norm(
                h,
                ones,
                params[f"bn{i}_beta"],
                epsilon=self.bn_epsilon,
                is_training=True,
            )
            h = tf.nn.relu(h)
            if self.downsample == "maxpool":
                h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        if self.head == "mean":
            feats = tf.reduce_mean(h, axis=[1, 2])
        else:
            feats = tf.reshape(h, [tf.shape(h)[0], self.feature_size()])
        return tf.matmul(feats, params["out_w"]) + params["out_b"]

    def _apply_batched(
        self, params: Mapping[str, tf.Tensor], x: tf.Tensor
    ) -> tf.Tensor:
        h = x
        stride = 2 if self.downsample == "stride" else 1
        for i in range(4):
            h = conv3x3_per_task(h, params[f"conv{i}_w"], stride, self.conv_impl)
            h = h + params[f"conv{i}_b"][:, None, None, None, :]
            stats = (
                h if self.bn_stats_examples is None else h[:, : self.bn_stats_examples]
            )
            mean, var = batch_moments(stats, axes=[1, 2, 3])
            h = (h - mean) * tf.math.rsqrt(var + self.bn_epsilon)
            h = tf.nn.relu(h + params[f"bn{i}_beta"][:, None, None, None, :])
            if self.downsample == "maxpool":
                size = h.shape[2] // 2
                h = h[:, :, : 2 * size, : 2 * size, :]
                shape = tf.shape(h)
                h = tf.reshape(h, [shape[0], shape[1], size, 2, size, 2, self.filters])
                h = tf.reduce_max(h, axis=[3, 5])
        if self.head == "mean":
            feats = tf.reduce_mean(h, axis=[2, 3])
        else:
            shape = tf.shape(h)
            feats = tf.reshape(h, [shape[0], shape[1], self.feature_size()])
        return tf.matmul(feats, params["out_w"]) + params["out_b"][:, None, :]


class ContextConv4(Conv4):
    """Conv4 with a learned context input: the context-vector baseline of App. C.

    Finn et al. 2017, Appendix C.1 (Table 3): free parameters z are concatenated
    channel-wise to the input image, and the inner loop adapts only z, not the
    network weights; z's initial value and the weights are meta-learned as in MAML.
    The paper does not give z's size; here z is one image-sized map per
    `context_channels` (`[H, W, context_channels]`, zeros at initialisation), the
    smallest z that can be "concatenated channel-wise" to the image.

    Args:
        num_classes: N.
        context_channels: Channels of z.
        **kwargs: Conv4's other arguments (image size, channels, filters, ...).
    """

    def __init__(self, num_classes: int, context_channels: int = 1, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.context_channels = int(context_channels)

    def _key(self):
        return (*super()._key(), self.context_channels)

    def __eq__(self, other) -> bool:
        return isinstance(other, ContextConv4) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((ContextConv4, self._key()))

    @property
    def adapted_keys(self) -> tuple[str, ...]:
        """Only the context z is adapted by the inner loop."""
        return ("context",)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super()._shapes()
        shapes["conv0_w"] = (3, 3, self.channels + self.context_channels, self.filters)
        shapes["context"] = (self.image_size, self.image_size, self.context_channels)
        return shapes

    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        context = params["context"][:, tf.newaxis]  # [T, 1, H, W, Cz]
        # Broadcast over the B examples ([T, B, H, W, 1] zeros keep static shapes).
        x = tf.concat([x, context + tf.zeros_like(x[..., :1])], axis=-1)
        weights = {k: v for k, v in params.items() if k != "context"}
        return super().apply(weights, x)
