"""A validation split carved from the training set, for hyper-parameter tuning.

Tuning on the test set would bias every reported test error. `carve` holds out a
fixed number of training examples of every class (chosen by a seeded random
permutation within the class); the rest stay for training. The test set is not
touched.
"""

from __future__ import annotations

import numpy as np


def carve(
    labels: np.ndarray, per_class: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the remaining training examples and of the validation examples.

    Args:
        labels: `[N]` training labels (the classes the split is stratified by).
        per_class: Validation examples per class; every class must keep at
            least one training example.
        seed: Seed of the choice.

    Returns:
        `(train_indices, validation_indices)`, both sorted, disjoint, covering
        `range(N)`.

    Raises:
        ValueError: `per_class` < 1, or some class has at most `per_class`
            examples.
    """
    labels = np.asarray(labels)
    if isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive int, got {per_class!r}.")
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) <= per_class:
            raise ValueError(
                f"class {label} has {len(members)} training examples, "
                f"too few to hold out {per_class}."
            )
        held.append(rng.permutation(members)[:per_class])
    validation = np.sort(np.concatenate(held))
    keep = np.ones(len(labels), bool)
    keep[validation] = False
    return np.flatnonzero(keep), validation
