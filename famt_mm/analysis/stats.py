"""Paired differences with a 95% t interval: how the CPU probe experiment says "wins", "ties"
and "loses" with numbers (docs/evaluation.md).

Two methods run with the same seeds; each seed gives one difference d_i = a_i - b_i (same data
order, same initial weights). The interval is mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n),
the Student t interval of the mean paired difference (normal differences assumed).
"""
import math
from typing import Dict, Optional, Sequence

__all__ = ['t_quantile_975', 'paired_interval', 'verdict']

#: two-sided 95% quantiles t(0.975, df) of Student's t, df = 1..30 (standard tables)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table for df <= 30, beyond it the Cornish-Fisher expansion around the
    normal quantile (within 0.001 of the exact value there)."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f'degrees of freedom must be an int >= 1, got {df!r}')
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean paired difference ``a - b`` and its 95% t interval.

    Args:
        a, b: one value per seed each, in the same seed order (n >= 1).
    Returns:
        n, mean, sd (of the differences), low, high (None for n = 1: no spread to use).
    """
    if len(a) != len(b) or not len(a):
        raise ValueError(f'paired values need equal, non-zero lengths, got {len(a)} and {len(b)}')
    d = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    if n == 1:
        return dict(n=1, mean=mean, sd=None, low=None, high=None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return dict(n=n, mean=mean, sd=sd, low=mean - half, high=mean + half)


def verdict(interval: Dict[str, Optional[float]]) -> str:
    """'better' (interval above 0), 'worse' (below 0), 'no difference shown' (contains 0), or
    'one seed' (no interval)."""
    if interval['low'] is None:
        return 'one seed'
    if interval['low'] > 0:
        return 'better'
    if interval['high'] < 0:
        return 'worse'
    return 'no difference shown'
