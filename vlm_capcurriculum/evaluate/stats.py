"""Small statistics of the analysis commands: Wilson intervals, Cohen's kappa, paired tests. scipy is used for the
Wilcoxon signed-rank test when installed (the ``report`` extra); otherwise the exact sign test, which needs nothing."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

Z_95 = 1.959963984540054


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None for ``total == 0``. Chosen over the normal
    approximation because audit samples are small and shares can be near 0 or 1."""
    if total <= 0:
        return None
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items; None without items, 1.0 when both always agree on one
    label (chance agreement 1)."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} labels against {len(second)}")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[label] * counts_b[label] for label in counts_a) / (n * n)
    if expected == 1.0:
        return 1.0
    return (observed - expected) / (1 - expected)


def sign_test(differences: Sequence[float]) -> float | None:
    """Two-sided exact sign test p-value of paired differences (zeros dropped); None without non-zero ones."""
    positive = sum(d > 0 for d in differences)
    negative = sum(d < 0 for d in differences)
    n = positive + negative
    if n == 0:
        return None
    k = min(positive, negative)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_test(first: Sequence[float], second: Sequence[float]) -> dict[str, Any]:
    """``second - first`` per item: Wilcoxon signed-rank (scipy) when available, else the exact sign test."""
    differences = [b - a for a, b in zip(first, second, strict=True)]
    result: dict[str, Any] = {"pairs": len(differences), "nonzero": sum(d != 0 for d in differences)}
    if not any(differences):
        return {**result, "test": None, "p_value": None}
    try:
        from scipy.stats import wilcoxon
    except ImportError:
        return {**result, "test": "sign test (exact, two-sided)", "p_value": sign_test(differences)}
    outcome = wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
    return {
        **result,
        "test": "Wilcoxon signed-rank (scipy, two-sided)",
        "p_value": float(outcome.pvalue),
        "sign_test_p_value": sign_test(differences),
    }
