"""Backtests of margin coverage: breach counts and breach clustering against the promise.

A *breach* is a day on which the realised loss exceeded the margin (for a scan range: the
realised move was larger than the range). A model with coverage ``c`` (0.99) promises that each
day breaches with probability ``p = 1 - c``, independently of the days before. The tests here
check that promise on a 0/1 breach series ``I_1 .. I_n`` with ``x = sum I_t`` breaches:

* :func:`kupiec`: proportion of failures, is ``x / n`` consistent with ``p``?
* :func:`christoffersen`: independence, does a breach today make one tomorrow more likely?
  With ``coverage`` also the joint conditional-coverage test.
* :func:`traffic_light`: the Basel green / yellow / red zone of the breach count.
* :func:`detectable_miscoverage`: the smallest true breach rate Kupiec's test would catch on a
  sample of ``n`` days, i.e. how much a backtest of that length can tell.
* :func:`coverage_report`: all of them for one series, as a :class:`CoverageReport`.

Logarithms of zero probabilities only ever appear multiplied by a zero count; those products are
0 (the limit of ``x ln x``), so no statistic is NaN for an all-quiet or all-breach series.

References
----------
P. H. Kupiec (1995), "Techniques for verifying the accuracy of risk measurement models",
Journal of Derivatives 3(2), 73-84.
P. F. Christoffersen (1998), "Evaluating interval forecasts", International Economic Review
39(4), 841-862, section 3.
Basel Committee on Banking Supervision (1996), "Supervisory framework for the use of
'backtesting' in conjunction with the internal models approach to market risk capital
requirements", Tables 1 and 2.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

#: Conventional test level and power (J. Cohen, "Statistical Power Analysis for the Behavioral
#: Sciences", 2nd ed., 1988, section 2.4: power 0.8 as the default target).
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
#: Basel traffic light (BCBS 1996, Table 2): a breach count is green while the binomial
#: probability of that many breaches or fewer is below 95%, yellow below 99.99%, red from there.
BASEL_GREEN_LIMIT = 0.95
BASEL_YELLOW_LIMIT = 0.9999
#: Excess breach rates ``q - p``, as fractions of ``1 - p``, scanned by
#: :func:`detectable_miscoverage` before the crossing is refined by Brent's method: geometric,
#: so a large sample (crossing just above ``p``) and a small one (crossing near 1) both resolve.
_EXCESS_GRID = np.geomspace(1e-10, 1.0, 4001)
#: Absolute tolerance on the detectable breach rate.
_RATE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class KupiecTest:
    """Kupiec's proportion-of-failures test of one breach series.

    Attributes
    ----------
    n : int
        Days tested.
    breaches : int
        Days breached, ``x``.
    expected_rate : float
        ``p = 1 - coverage``.
    observed_rate : float
        ``x / n``.
    statistic : float
        ``LR_pof`` (see :func:`kupiec`), >= 0.
    p_value : float
        ``P(chi2(1) > LR_pof)``.
    """

    n: int
    breaches: int
    expected_rate: float
    observed_rate: float
    statistic: float
    p_value: float

    def reject(self, alpha: float = DEFAULT_ALPHA) -> bool:
        """True when the breach rate is inconsistent with the coverage at level ``alpha``."""
        _check_probability(alpha, "alpha")
        return bool(self.p_value < alpha)


@dataclass(frozen=True)
class ChristoffersenTest:
    """Christoffersen's independence test (and, given a coverage, conditional coverage).

    Attributes
    ----------
    n : int
        Days tested (``n - 1`` transitions).
    n00, n01, n10, n11 : int
        Transition counts: ``nij`` days in state ``j`` after a day in state ``i`` (1 = breach).
    pi01, pi11 : float
        Breach probability after a quiet day, ``n01 / (n00 + n01)``, and after a breach day,
        ``n11 / (n10 + n11)``. When no transition leaves a state the probability is not
        identified and the likelihood does not depend on it; it is reported as ``pi``, which
        contributes nothing to the statistic.
    pi : float
        Breach probability of the transitions, ``(n01 + n11) / (n - 1)``.
    statistic : float
        ``LR_ind`` (see :func:`christoffersen`), >= 0.
    p_value : float
        ``P(chi2(1) > LR_ind)``.
    conditional_coverage_statistic, conditional_coverage_p_value : float or None
        ``LR_cc = LR_pof + LR_ind`` and ``P(chi2(2) > LR_cc)``; None without a coverage.
    """

    n: int
    n00: int
    n01: int
    n10: int
    n11: int
    pi01: float
    pi11: float
    pi: float
    statistic: float
    p_value: float
    conditional_coverage_statistic: float | None = None
    conditional_coverage_p_value: float | None = None

    def reject(self, alpha: float = DEFAULT_ALPHA) -> bool:
        """True when breaches are serially dependent at level ``alpha``."""
        _check_probability(alpha, "alpha")
        return bool(self.p_value < alpha)

    def reject_conditional_coverage(self, alpha: float = DEFAULT_ALPHA) -> bool:
        """True when rate and independence together are rejected at level ``alpha``."""
        _check_probability(alpha, "alpha")
        if self.conditional_coverage_p_value is None:
            raise ValueError("conditional coverage needs the coverage: christoffersen(b, coverage)")
        return bool(self.conditional_coverage_p_value < alpha)


@dataclass(frozen=True)
class DetectableMiscoverage:
    """What a Kupiec backtest of ``n`` days can detect.

    Attributes
    ----------
    n : int
        Sample size.
    expected_rate : float
        ``p = 1 - coverage``.
    alpha, power : float
        Test level and the required probability of rejecting.
    breach_rate : float
        The smallest true breach rate ``q > p`` rejected with probability >= ``power``.
    multiplier : float
        ``q / p``: e.g. 3.6 means a model breaching 3.6 times as often as promised is caught
        with probability ``power``; a milder miscoverage likely passes.
    lower_critical, upper_critical : int
        The test rejects ``x <= lower_critical`` (-1: no count is too few) and
        ``x >= upper_critical`` (``n + 1``: no count is too many).
    size : float
        The test's actual rejection probability at ``q = p`` (differs from ``alpha`` because
        the count is discrete and the chi-square critical value is asymptotic).
    """

    n: int
    expected_rate: float
    alpha: float
    power: float
    breach_rate: float
    multiplier: float
    lower_critical: int
    upper_critical: int
    size: float


class Zone(enum.Enum):
    """Basel traffic-light zone; ``.message`` says what it means."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def message(self) -> str:
        return {
            Zone.GREEN: "consistent with the coverage (cumulative probability below 95%)",
            Zone.YELLOW: "possibly undercovering (cumulative probability 95% to 99.99%)",
            Zone.RED: "undercovering (cumulative probability at least 99.99%)",
        }[self]


@dataclass(frozen=True)
class TrafficLight:
    """A breach count's Basel zone.

    Attributes
    ----------
    zone : Zone
    breaches, n : int
    expected_rate : float
        ``p = 1 - coverage``.
    cumulative_probability : float
        ``P(X <= breaches)`` for ``X ~ Binomial(n, p)``.
    """

    zone: Zone
    breaches: int
    n: int
    expected_rate: float
    cumulative_probability: float


@dataclass(frozen=True)
class CoverageReport:
    """Backtest statistics of one breach series (:func:`coverage_report`).

    Attributes
    ----------
    n, breaches : int
    breach_rate, expected_rate : float
        Observed ``x / n`` and promised ``1 - coverage``.
    kupiec_p_value : float
        Proportion of failures.
    christoffersen_p_value : float
        Independence.
    conditional_coverage_p_value : float
        Rate and independence jointly.
    zone : Zone
        Basel traffic light.
    detectable_rate, detectable_multiplier : float
        :attr:`DetectableMiscoverage.breach_rate` and ``.multiplier`` for this ``n``.
    kupiec, christoffersen, traffic_light, detectable
        The full results behind the numbers above.
    """

    n: int
    breaches: int
    breach_rate: float
    expected_rate: float
    kupiec_p_value: float
    christoffersen_p_value: float
    conditional_coverage_p_value: float
    zone: Zone
    detectable_rate: float
    detectable_multiplier: float
    kupiec: KupiecTest = field(repr=False)
    christoffersen: ChristoffersenTest = field(repr=False)
    traffic_light: TrafficLight = field(repr=False)
    detectable: DetectableMiscoverage = field(repr=False)

    def as_dict(self) -> dict[str, float | int | str]:
        """The headline numbers as one table row (the zone by name)."""
        return {
            "n": self.n,
            "breaches": self.breaches,
            "breach_rate": self.breach_rate,
            "expected_rate": self.expected_rate,
            "kupiec_p_value": self.kupiec_p_value,
            "christoffersen_p_value": self.christoffersen_p_value,
            "conditional_coverage_p_value": self.conditional_coverage_p_value,
            "zone": self.zone.value,
            "detectable_rate": self.detectable_rate,
            "detectable_multiplier": self.detectable_multiplier,
        }


def kupiec(breaches, coverage: float) -> KupiecTest:
    """Kupiec's proportion-of-failures likelihood-ratio test.

    Parameters
    ----------
    breaches : array-like of bool or 0/1, shape ``(day,)``
        Breach indicator per day, at least one day; no missing values (drop days without a
        margin forecast first).
    coverage : float in (0, 1)
        Promised coverage ``c``; breach probability ``p = 1 - c``.

    Returns
    -------
    KupiecTest

    Notes
    -----
    With ``x`` breaches in ``n`` days and ``p_hat = x / n``,

    ``LR_pof = -2 ln[ (1-p)^(n-x) p^x / ((1-p_hat)^(n-x) p_hat^x) ]``

    with ``0 ln 0 = 0`` (so ``x = 0`` gives ``-2 n ln(1-p)`` and ``x = n`` gives ``-2 n ln p``),
    asymptotically ``chi2(1)`` under the null ``E[I_t] = p``.
    """
    indicator = _breach_array(breaches)
    p = _expected_rate(coverage)
    n, x = indicator.size, int(indicator.sum())
    statistic = float(_lr_pof(x, n, p))
    return KupiecTest(
        n=n,
        breaches=x,
        expected_rate=p,
        observed_rate=x / n,
        statistic=statistic,
        p_value=float(stats.chi2.sf(statistic, 1)),
    )


def christoffersen(breaches, coverage: float | None = None) -> ChristoffersenTest:
    """Christoffersen's Markov independence test, and conditional coverage given ``coverage``.

    Parameters
    ----------
    breaches : array-like of bool or 0/1, shape ``(day,)``
        Breach indicator per day in time order, at least two days, no missing values.
    coverage : float in (0, 1), optional
        Promised coverage; when given the result also carries the conditional-coverage test.

    Returns
    -------
    ChristoffersenTest

    Notes
    -----
    Over the ``n - 1`` transitions ``(I_{t-1}, I_t)`` count ``n00, n01, n10, n11``; with
    ``pi01 = n01 / (n00 + n01)``, ``pi11 = n11 / (n10 + n11)`` and
    ``pi = (n01 + n11) / (n - 1)``,

    ``LR_ind = -2 ln[ (1-pi)^(n00+n10) pi^(n01+n11) /
    ((1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11) ]``, asymptotically ``chi2(1)``;

    ``LR_cc = LR_pof + LR_ind``, asymptotically ``chi2(2)`` (``LR_pof`` from :func:`kupiec` on
    all ``n`` days, the usual practice; Christoffersen conditions on the first day).

    Degenerate series never give NaN: ``0 ln 0 = 0``, and a transition probability that no
    transition identifies (no quiet day before the last, or no breach before the last) is set
    to ``pi``, so its terms cancel. A series without breaches, or of breaches only, has
    ``LR_ind = 0`` and p-value 1: it carries no evidence of clustering.
    """
    indicator = _breach_array(breaches)
    if indicator.size < 2:
        raise ValueError(
            f"the independence test needs at least 2 days (one transition), got {indicator.size}"
        )
    before, after = indicator[:-1], indicator[1:]
    n00 = int(np.sum(~before & ~after))
    n01 = int(np.sum(~before & after))
    n10 = int(np.sum(before & ~after))
    n11 = int(np.sum(before & after))
    pi = (n01 + n11) / (indicator.size - 1)
    pi01 = n01 / (n00 + n01) if n00 + n01 else pi
    pi11 = n11 / (n10 + n11) if n10 + n11 else pi
    restricted = _bernoulli_loglik(n01 + n11, n00 + n10, pi)
    unrestricted = _bernoulli_loglik(n01, n00, pi01) + _bernoulli_loglik(n11, n10, pi11)
    # The statistic is a likelihood ratio of nested models, >= 0; rounding can leave -1e-15.
    statistic = float(max(0.0, 2.0 * (unrestricted - restricted)))
    cc_statistic = cc_p_value = None
    if coverage is not None:
        p = _expected_rate(coverage)
        cc_statistic = float(_lr_pof(int(indicator.sum()), indicator.size, p)) + statistic
        cc_p_value = float(stats.chi2.sf(cc_statistic, 2))
    return ChristoffersenTest(
        n=indicator.size,
        n00=n00,
        n01=n01,
        n10=n10,
        n11=n11,
        pi01=float(pi01),
        pi11=float(pi11),
        pi=float(pi),
        statistic=statistic,
        p_value=float(stats.chi2.sf(statistic, 1)),
        conditional_coverage_statistic=cc_statistic,
        conditional_coverage_p_value=cc_p_value,
    )


def detectable_miscoverage(
    n: int, coverage: float, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> DetectableMiscoverage:
    """The smallest breach rate above ``p`` that Kupiec's test detects on ``n`` days.

    Parameters
    ----------
    n : int >= 1
        Backtest length in days.
    coverage : float in (0, 1)
        Promised coverage; ``p = 1 - coverage``.
    alpha : float in (0, 1)
        Level of the test (reject when its p-value is below ``alpha``).
    power : float in (0, 1)
        Required probability of rejecting.

    Returns
    -------
    DetectableMiscoverage

    Raises
    ------
    ValueError
        When no breach rate reaches ``power`` (no count up to ``n`` is rejected as too many),
        or when the test's size already reaches ``power``.

    Notes
    -----
    Exact binomial computation, no normal approximation. ``LR_pof(x)`` is ``2 n`` times the
    Kullback-Leibler divergence of ``x / n`` from ``p``, convex in ``x`` with its minimum at
    ``n p``, so the rejection region ``{x : P(chi2(1) > LR_pof(x)) < alpha}`` is two tails,
    ``x <= lower_critical`` and ``x >= upper_critical``. Under a true rate ``q`` the test rejects
    with probability ``P_q(X <= lower_critical) + P_q(X >= upper_critical)``,
    ``X ~ Binomial(n, q)``; the result is the first ``q > p`` where this reaches ``power``,
    found on a geometric grid of ``q - p`` and refined by Brent's method to 1e-12.
    """
    if not (isinstance(n, int | np.integer) and n >= 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    p = _expected_rate(coverage)
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    counts = np.arange(n + 1)
    rejected = stats.chi2.sf(_lr_pof(counts, n, p), 1) < alpha
    too_few = counts[rejected & (counts < n * p)]
    too_many = counts[rejected & (counts > n * p)]
    lower = int(too_few.max()) if too_few.size else -1
    upper = int(too_many.min()) if too_many.size else n + 1
    if upper > n:
        raise ValueError(
            f"with n={n} and p={p:g} no breach count is rejected as too many at level "
            f"{alpha:g}: no miscoverage is detectable; use a longer backtest"
        )

    def rejection_probability(q):
        return stats.binom.cdf(lower, n, q) + stats.binom.sf(upper - 1, n, q)

    size = float(rejection_probability(p))
    if size >= power:
        raise ValueError(
            f"the test's size {size:.3g} at n={n}, p={p:g} already reaches power {power:g}"
        )
    grid = p + (1.0 - p) * _EXCESS_GRID
    first = int(np.argmax(rejection_probability(grid) >= power))
    low_end = p if first == 0 else grid[first - 1]
    rate = float(
        optimize.brentq(
            lambda q: rejection_probability(q) - power,
            low_end,
            grid[first],
            xtol=_RATE_TOLERANCE,
        )
    )
    return DetectableMiscoverage(
        n=n,
        expected_rate=p,
        alpha=float(alpha),
        power=float(power),
        breach_rate=rate,
        multiplier=rate / p,
        lower_critical=lower,
        upper_critical=upper,
        size=size,
    )


def traffic_light(breaches_count: int, n: int, coverage: float) -> TrafficLight:
    """The Basel traffic-light zone of ``breaches_count`` breaches in ``n`` days.

    Parameters
    ----------
    breaches_count : int, 0 <= breaches_count <= n
    n : int >= 1
    coverage : float in (0, 1)
        ``p = 1 - coverage``.

    Returns
    -------
    TrafficLight

    Notes
    -----
    With ``F = P(X <= breaches_count)``, ``X ~ Binomial(n, p)``: green if
    ``F < 0.95``, yellow if ``F < 0.9999``, red otherwise (BCBS 1996, Table 2). For ``n = 250``
    and ``p = 1%`` this gives green for 0-4 breaches, yellow for 5-9, red from 10.
    """
    if not (isinstance(n, int | np.integer) and n >= 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not (isinstance(breaches_count, int | np.integer) and 0 <= breaches_count <= n):
        raise ValueError(f"breaches_count must be an integer in [0, n={n}], got {breaches_count!r}")
    p = _expected_rate(coverage)
    cumulative = float(stats.binom.cdf(breaches_count, n, p))
    if cumulative < BASEL_GREEN_LIMIT:
        zone = Zone.GREEN
    elif cumulative < BASEL_YELLOW_LIMIT:
        zone = Zone.YELLOW
    else:
        zone = Zone.RED
    return TrafficLight(
        zone=zone,
        breaches=int(breaches_count),
        n=int(n),
        expected_rate=p,
        cumulative_probability=cumulative,
    )


def coverage_report(
    breaches,
    coverage: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> CoverageReport:
    """Every backtest statistic of one breach series.

    Parameters
    ----------
    breaches : array-like of bool or 0/1, shape ``(day,)``
        Breach indicator per day in time order, at least two days, no missing values.
    coverage : float in (0, 1)
        Promised coverage.
    alpha, power : float in (0, 1)
        Level and power for :func:`detectable_miscoverage`.

    Returns
    -------
    CoverageReport
    """
    indicator = _breach_array(breaches)
    pof = kupiec(indicator, coverage)
    independence = christoffersen(indicator, coverage)
    light = traffic_light(pof.breaches, pof.n, coverage)
    detectable = detectable_miscoverage(pof.n, coverage, alpha=alpha, power=power)
    return CoverageReport(
        n=pof.n,
        breaches=pof.breaches,
        breach_rate=pof.observed_rate,
        expected_rate=pof.expected_rate,
        kupiec_p_value=pof.p_value,
        christoffersen_p_value=independence.p_value,
        conditional_coverage_p_value=float(independence.conditional_coverage_p_value),
        zone=light.zone,
        detectable_rate=detectable.breach_rate,
        detectable_multiplier=detectable.multiplier,
        kupiec=pof,
        christoffersen=independence,
        traffic_light=light,
        detectable=detectable,
    )


def _bernoulli_loglik(successes, failures, rate):
    """``successes ln(rate) + failures ln(1 - rate)`` with ``0 ln 0 = 0``."""
    return special.xlogy(successes, rate) + special.xlog1py(failures, -rate)


def _lr_pof(breaches, n, p):
    """Kupiec's statistic for counts ``breaches`` (scalar or array) out of ``n``."""
    breaches = np.asarray(breaches, dtype=float)
    observed = breaches / n
    # -2 ln of the likelihood ratio written as 2 n KL(x/n || p): each term vanishes exactly
    # when x / n equals p, where the difference of log-likelihoods would leave rounding noise.
    statistic = 2.0 * (
        special.xlogy(breaches, observed / p)
        + special.xlogy(n - breaches, (1 - observed) / (1 - p))
    )
    # KL >= 0; rounding of the ratios can leave -1e-15.
    return np.maximum(statistic, 0.0)


def _breach_array(breaches) -> np.ndarray:
    values = np.asarray(breaches)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"breaches must be a non-empty 1-D series, got shape {values.shape}")
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"breaches must be booleans or 0/1, got dtype {values.dtype}")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        where = ", ".join(str(i) for i in np.flatnonzero(bad)[:5])
        raise ValueError(
            f"breaches must be 0/1 without missing days; bad value(s) at position(s) {where} "
            "(drop days without a margin forecast before testing)"
        )
    return values.astype(bool)


def _expected_rate(coverage: float) -> float:
    _check_probability(coverage, "coverage")
    return 1.0 - float(coverage)


def _check_probability(value: float, name: str) -> None:
    if not (np.isscalar(value) and 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
