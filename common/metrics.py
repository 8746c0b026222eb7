"""Metrics: the unbiased pass@k estimator and its aggregates.

pass@k = 1 - C(n-c, k) / C(n, k) per task (Chen et al. 2021), computed as a stable product;
1.0 when n - c < k. A k larger than n is an error, never silently dropped.
"""
from __future__ import annotations

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``n`` samples of which ``c`` passed."""
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"k={k} is not in 1..n (n={n}); pass@k needs at least k samples per task")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
