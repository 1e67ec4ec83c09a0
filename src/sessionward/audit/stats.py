"""Tail probabilities for the audit's statistical checks, and the false-alarm budget.

A statistical check on random data fails now and then by chance alone: its *false-alarm
rate* is the probability that a correct site (IDs from a CSPRNG) fails it in one run. Each
check of ``sessionward audit`` derives its thresholds from :data:`FALSE_ALARM_RATE`
through the functions here, and says so in the report, so that a failure means "this
would happen by chance less than once in a million audits", never "8 % of the time".

Pure functions of the standard library (``math``); exact where the distribution is
exact (binomial), with a stated approximation elsewhere. Thresholds are cached: an audit
asks for the same few again and again, and a simulation of 10⁵ runs for each run.
"""

from __future__ import annotations

import functools
import math

FALSE_ALARM_RATE = 1e-6
"""Most probability that one statistical check fails a correct site in one audit run."""


def rate_text(rate: float) -> str:
    """Show a probability as the report does (``≤ 1e-06`` style, or ``< 1e-300``)."""
    if rate <= 0:
        return "0"
    if rate < 1e-300:
        return "< 1e-300"
    return f"{rate:.0e}".replace("e-0", "e-")


def log_binomial_pmf(k: int, n: int, p: float) -> float:
    """``log P(X = k)`` for ``X ~ Binomial(n, p)`` (``-inf`` where it is 0)."""
    if k < 0 or k > n:
        return -math.inf
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, summed in log space until the terms vanish."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if k <= n * p:
        return max(0.0, 1.0 - _tail_sum(k - 1, n, p, step=-1))
    return min(1.0, _tail_sum(k, n, p, step=1))


def _tail_sum(start: int, n: int, p: float, *, step: int) -> float:
    """Sum the pmf from ``start`` away from the mean (terms only shrink there) until negligible."""
    first = log_binomial_pmf(start, n, p)
    if first == -math.inf:
        return 0.0
    total = 0.0
    i = start
    while 0 <= i <= n:
        term = math.exp(log_binomial_pmf(i, n, p) - first)
        total += term
        if term < 1e-17 * total:
            break
        i += step
    return total * math.exp(first)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``."""
    return binomial_sf(n - k, n, 1 - p)


@functools.lru_cache(maxsize=4096)
def binomial_upper_threshold(n: int, p: float, rate: float) -> int | None:
    """The smallest ``t >= 1`` with ``P(X >= t) <= rate``; ``None`` when even ``t = n`` is too likely."""
    low, high = 1, n
    if binomial_sf(high, n, p) > rate:
        return None
    while low < high:  # binomial_sf decreases in t
        middle = (low + high) // 2
        if binomial_sf(middle, n, p) <= rate:
            high = middle
        else:
            low = middle + 1
    return low


@functools.lru_cache(maxsize=4096)
def binomial_lower_threshold(n: int, p: float, rate: float) -> int:
    """The largest ``t`` with ``P(X < t) <= rate`` (0 when no ``t > 0`` qualifies)."""
    low, high = 0, n
    while low < high:  # P(X < t) = cdf(t - 1) increases in t
        middle = (low + high + 1) // 2
        if binomial_cdf(middle - 1, n, p) <= rate:
            low = middle
        else:
            high = middle - 1
    return low


@functools.lru_cache(maxsize=4096)
def fair_coin_bounds(n: int, rate: float) -> tuple[int, int]:
    """Bounds ``(low, high)`` on the number of ones in ``n`` fair bits, each tail at most ``rate / 2``.

    Outside ``low <= ones <= high`` happens with probability at most ``rate``.
    """
    low = binomial_lower_threshold(n, 0.5, rate / 2)
    return low, n - low


def regularized_gamma_p(a: float, x: float) -> float:
    """The regularized lower incomplete gamma function ``P(a, x)`` (series or continued fraction)."""
    if x <= 0:
        return 0.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, total * math.exp(log_prefix))
    return max(0.0, 1.0 - _gamma_q_fraction(a, x, log_prefix))


def regularized_gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``, accurate in the far tail."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        return 1.0 - regularized_gamma_p(a, x)
    return _gamma_q_fraction(a, x, a * math.log(x) - x - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float, log_prefix: float) -> float:
    # Lentz's method for the continued fraction of Q(a, x).
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(log_prefix) * h


@functools.lru_cache(maxsize=4096)
def chi2_bounds(df: int, rate: float) -> tuple[float, float]:
    """Bounds ``(low, high)`` of a chi-square statistic with ``df`` degrees of freedom, each tail ``rate / 2``."""
    a = df / 2

    def solve(tail: float, upper: bool) -> float:
        low, high = 0.0, float(df)
        while upper and regularized_gamma_q(a, high / 2) > tail:
            high *= 2
        for _ in range(200):
            middle = (low + high) / 2
            probability = regularized_gamma_q(a, middle / 2) if upper else regularized_gamma_p(a, middle / 2)
            if (probability > tail) == upper:
                low = middle
            else:
                high = middle
        return low if not upper else high

    return solve(rate / 2, upper=False), solve(rate / 2, upper=True)
