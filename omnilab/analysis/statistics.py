"""Uncertainty and change detection for the analytics: Wilson intervals, two-window comparisons, pairwise
agent comparisons. The statistics come from statsmodels and scipy; nothing here re-derives a formula.

- ``wilson_interval``: 95 % Wilson score interval of a proportion (statsmodels ``proportion_confint``,
  vectorized), in the unit of the rate it brackets (percent for ``success_rate``).
- ``proportion_test``: are two success proportions different? Pearson's chi-square test without
  continuity correction (the two-proportion z-test) when every expected cell count of the 2x2 table is at
  least 5 (Cochran's rule), otherwise Fisher's exact test (scipy). Two-sided.
- ``mann_whitney``: are two samples of execution times shifted? scipy's two-sided Mann-Whitney U.
- ``bh_qvalues``: Benjamini-Hochberg adjusted p-values (scipy ``false_discovery_control``) over the tests
  that could be run (NaN p-values stay NaN and do not count as comparisons).

``compare_windows`` and ``compare_agents`` take their counts, medians and raw execution times from the
analytics SQL (:mod:`omnilab.sql.queries`, same NULL rules: a NULL success is in neither the numerator
nor the denominator of a rate, a NULL execution time is in no median and no test). Rate tests and
execution-time tests are separate families, each with its own Benjamini-Hochberg correction.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Any

import numpy as np
import pandas as pd

from omnilab.errors import InvalidInput
from omnilab.sql.intervals import check_counts, wilson_interval, with_rate_interval

__all__ = [
    "ALPHA",
    "wilson_interval",
    "with_rate_interval",
    "proportion_test",
    "mann_whitney",
    "bh_qvalues",
    "compare_windows",
    "compare_agents",
    "AgentComparison",
    "COMPARE_BY",
]

#: the false discovery rate at which a change is called significant
ALPHA = 0.05
#: Cochran's rule: the chi-square (z) approximation needs every expected count of the 2x2 table >= 5
MIN_EXPECTED = 5.0
#: what compare_windows can compare: agents and their groupings (agent_performance) or models (api_usage)
COMPARE_BY = ("agent_id", "task_type", "system_name", "agent_type", "model")


# ---------------------------------------------------------------------------------------- primitives
def proportion_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, str]:
    """Two-sided test of ``s1/n1 == s2/n2``: ``(p_value, "z" | "fisher")``; ``(nan, "")`` if a side has no trials.

    "z" is Pearson's chi-square without continuity correction, identical to the two-proportion z-test;
    it is used when every expected count of the 2x2 table is >= 5, Fisher's exact test otherwise.
    """
    from scipy import stats

    s1, n1, s2, n2 = (int(v) for v in check_counts([s1, n1, s2, n2], "counts"))
    if s1 > n1 or s2 > n2:
        raise InvalidInput("successes cannot exceed trials")
    if n1 == 0 or n2 == 0:
        return float("nan"), ""
    table = np.array([[s1, n1 - s1], [s2, n2 - s2]])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() >= MIN_EXPECTED:
        return float(stats.chi2_contingency(table, correction=False).pvalue), "z"
    return float(stats.fisher_exact(table).pvalue), "fisher"


def mann_whitney(x: Any, y: Any) -> float:
    """Two-sided Mann-Whitney U p-value of two samples (NaN values dropped); NaN if a sample is empty."""
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def bh_qvalues(pvalues: Any) -> np.ndarray:
    """Benjamini-Hochberg q-values; NaN p-values stay NaN and are not counted as comparisons."""
    from scipy import stats

    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if np.any(ok):
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def _tests(frame: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Rate and time tests between the ``_<a>`` and ``_<b>`` columns of each row; q-values over the rows."""
    rate_p, kinds = [], []
    for d in frame.to_dict("records"):
        p, kind = proportion_test(
            d[f"successful_{a}"],
            d[f"successful_{a}"] + d[f"failed_{a}"],
            d[f"successful_{b}"],
            d[f"successful_{b}"] + d[f"failed_{b}"],
        )
        rate_p.append(p)
        kinds.append(kind)
    out = frame.copy()
    out["p_value"] = np.asarray(rate_p, dtype=float)
    out["test"] = kinds
    out["q_value"] = bh_qvalues(out["p_value"])
    out["significant"] = (out["q_value"] < ALPHA).astype(bool)
    return out


# --------------------------------------------------------------------------------- what changed
def compare_windows(bind: Any, days: int = 7, *, now: Any = None, by: str = "agent_id") -> pd.DataFrame:
    """Each group's last ``days`` (``[now - days, now]``) against the ``days`` before (``[now - 2 days,
    now - days)``): runs, success rates with Wilson intervals, their difference and whether it is real.

    ``by``: ``agent_id`` (every agent, with name and system_name), ``task_type``, ``system_name``,
    ``agent_type`` (runs of agent_performance) or ``model`` (calls of api_usage per provider and model:
    success means a status code below 400, time is the response time).
    Columns: the key(s); runs_previous, successful_previous, failed_previous, success_rate_previous
    (+ _low, _high), median_time_previous (s); the same ``_current``; rate_change (percentage points,
    current - previous), p_value, test ("z" or "fisher"; "" when a window has no known outcome), q_value
    (Benjamini-Hochberg over the rows tested), significant (q < 0.05); median_time_change (s),
    time_p_value (Mann-Whitney U), time_q_value, time_significant; verdict ("regression", "improvement",
    "no significant change", "not enough data"). Significant rows first (smallest q), then the others.
    ``frame.attrs`` holds ``previous_window`` and ``current_window`` (start, end) in UTC.
    """
    from omnilab.sql import queries

    if not isinstance(by, str) or by not in COMPARE_BY:
        raise InvalidInput(f"by must be one of {', '.join(COMPARE_BY)}, got {by!r}")
    periods = queries.two_windows(days, now)
    counts, times = queries.period_outcomes(bind, by, periods)
    keys = queries.period_keys(by)
    frame = counts
    for side in ("previous", "current"):
        frame = with_rate_interval(
            frame, successes=f"successful_{side}", failures=f"failed_{side}", rate=f"success_rate_{side}"
        )
    frame["rate_change"] = frame["success_rate_current"] - frame["success_rate_previous"]
    frame = _tests(frame, "previous", "current")
    frame["median_time_change"] = frame["median_time_current"] - frame["median_time_previous"]
    groups = {k: g for k, g in times.groupby(keys, dropna=False, sort=False)} if len(times) else {}

    def samples(key: tuple, period: str) -> np.ndarray:
        g = groups.get(key)
        return np.empty(0) if g is None else g.loc[g["period"] == period, "execution_time"].to_numpy(float)

    frame["time_p_value"] = (
        [
            mann_whitney(samples(k, "previous"), samples(k, "current"))
            for k in frame[keys].itertuples(index=False, name=None)
        ]
        if len(frame)
        else np.empty(0)
    )
    frame["time_q_value"] = bh_qvalues(frame["time_p_value"])
    frame["time_significant"] = (frame["time_q_value"] < ALPHA).astype(bool)
    frame["verdict"] = np.select(
        [
            frame["significant"] & (frame["rate_change"] < 0),
            frame["significant"] & (frame["rate_change"] > 0),
            frame["p_value"].notna(),
        ],
        ["regression", "improvement", "no significant change"],
        default="not enough data",
    )
    frame = frame.sort_values(
        ["significant", "q_value", "time_q_value", *keys],
        ascending=[False, True, True, *([True] * len(keys))],
        na_position="last",
        kind="mergesort",
    ).reset_index(drop=True)
    frame.attrs = {"previous_window": periods[:2], "current_window": periods[1:], "by": by, "days": int(days)}
    return frame


# ------------------------------------------------------------------------------- agents on a task
@dataclasses.dataclass(frozen=True)
class AgentComparison:
    """Agents that ran one task type: ``agents`` (one row each, best rate first) and ``pairs`` (every pair)."""

    task_type: str
    agents: pd.DataFrame
    pairs: pd.DataFrame

    def _repr_html_(self) -> str:
        return (
            f"<h4>Agents on task type {self.task_type!s}</h4>"
            + self.agents.to_html(index=False)
            + "<h4>Pairwise comparisons</h4>"
            + self.pairs.to_html(index=False)
        )


_PAIR_SIDE = ("agent_id", "name", "runs", "successful", "failed", "success_rate", "median_time")


def compare_agents(bind: Any, task_type: str, days: int = 30, *, now: Any = None) -> AgentComparison:
    """The agents that ran ``task_type`` in ``[now - days, now]``, compared with each other.

    ``agents``: agent_id, name, system_name, runs, successful_tasks, failed_tasks, success_rate (+ _low,
    _high; %), p50_execution_time, p95_execution_time (s), total_tokens; best rate first.
    ``pairs``: one row per pair, ``_a`` the better-ranked agent: agent_id_a, name_a, runs_a,
    successful_a, failed_a, success_rate_a, median_time_a, the same ``_b``; rate_difference (a - b,
    percentage points), p_value, test, q_value, significant, time_p_value, time_q_value, time_significant
    (q-values over all pairs).
    """
    from omnilab.sql import queries

    agents, times = queries.task_type_agents(bind, task_type, days, now=now)
    agents = with_rate_interval(agents)
    by_agent = {k: g["execution_time"].to_numpy(float) for k, g in times.groupby("agent_id")}
    rows = []
    for a, b in itertools.combinations(agents.to_dict("records"), 2):
        row: dict[str, Any] = {}
        for suffix, agent in (("a", a), ("b", b)):
            row.update(
                {
                    f"agent_id_{suffix}": agent["agent_id"],
                    f"name_{suffix}": agent["name"],
                    f"runs_{suffix}": agent["runs"],
                    f"successful_{suffix}": agent["successful_tasks"],
                    f"failed_{suffix}": agent["failed_tasks"],
                    f"success_rate_{suffix}": agent["success_rate"],
                    f"median_time_{suffix}": agent["p50_execution_time"],
                }
            )
        row["time_p_value"] = mann_whitney(by_agent.get(a["agent_id"], []), by_agent.get(b["agent_id"], []))
        rows.append(row)
    columns = [f"{c}_{s}" for s in ("a", "b") for c in _PAIR_SIDE]
    pairs = pd.DataFrame(rows, columns=[*columns, "time_p_value"])
    pairs = pairs.astype({f"{c}_{s}": "int64" for s in "ab" for c in ("runs", "successful", "failed")})
    pairs.insert(len(columns), "rate_difference", pairs["success_rate_a"] - pairs["success_rate_b"])
    pairs = _tests(pairs, "a", "b")
    time_p = pairs.pop("time_p_value")
    pairs["time_p_value"] = time_p.astype(float)
    pairs["time_q_value"] = bh_qvalues(pairs["time_p_value"])
    pairs["time_significant"] = (pairs["time_q_value"] < ALPHA).astype(bool)
    with warnings.catch_warnings():  # an all-NaN sort key is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        pairs = pairs.sort_values(["q_value", "time_q_value"], na_position="last", kind="mergesort")
    return AgentComparison(task_type, agents, pairs.reset_index(drop=True))
