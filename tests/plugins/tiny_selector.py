"""A user's own selectors, passed as ``--selector plugins.tiny_selector:favour_class_zero``."""

import numpy as np

NOT_A_FUNCTION = 3


def favour_class_zero(scores):
    """Weight 3 on class 0, 1 elsewhere."""
    return np.where(scores.labels == 0, 3.0, 1.0)


def all_zero(scores):
    return np.zeros(len(scores.labels))
