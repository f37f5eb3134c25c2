"""Statistics against independent computations: Wilson intervals (scipy binomtest; the code uses
statsmodels), two-proportion tests (statsmodels' z-test; a brute-force hypergeometric Fisher),
Benjamini-Hochberg (statsmodels' multipletests; the code uses scipy), and the window / agent comparisons
against pandas over the raw rows, on SQLite and PostgreSQL. A seeded regression (90 % -> 60 %) is found;
an unchanged agent, an all-success agent and an agent without runs are not.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from conftest import analytics_data
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from omnilab.analysis import statistics
from omnilab.errors import InvalidInput

NOW = analytics_data.NOW


# ------------------------------------------------------------------------------------ primitives
def test_wilson_matches_scipy_and_hand_worked_cases():
    k = np.array([0, 1, 5, 9, 10, 180, 0])
    n = np.array([10, 10, 10, 10, 10, 200, 0])
    low, high = statistics.wilson_interval(k, n)
    for i in range(len(k) - 1):
        ci = stats.binomtest(int(k[i]), int(n[i])).proportion_ci(method="wilson")
        assert low[i] == pytest.approx(100 * ci.low, rel=1e-9, abs=1e-9)
        assert high[i] == pytest.approx(100 * ci.high, rel=1e-9)
    # hand-worked: 5 of 10 -> 0.5 +- 1.96 * sqrt(0.25/10 + 1.96^2/400) / (1 + 1.96^2/10)
    z = stats.norm.ppf(0.975)
    half = z * math.sqrt(0.025 + z**2 / 400) / (1 + z**2 / 10)
    assert (low[2], high[2]) == pytest.approx((100 * (0.5 - half), 100 * (0.5 + half)))
    assert low[0] == 0 and high[4] == pytest.approx(100)  # no success / all successes: the bound is the edge
    assert math.isnan(low[-1]) and math.isnan(high[-1])  # zero runs: no interval
    assert statistics.wilson_interval([3], [4], scale=1.0)[1][0] < 1
    with pytest.raises(InvalidInput):
        statistics.wilson_interval([5], [4])
    with pytest.raises(InvalidInput):
        statistics.wilson_interval([-1], [4])
    with pytest.raises(InvalidInput):
        statistics.wilson_interval([1.5], [4])


def _fisher_brute(a: int, n1: int, c: int, n2: int) -> float:
    """Two-sided Fisher p: the probability of every table at most as likely as the observed one."""
    total, wins = n1 + n2, a + c
    probs = {x: stats.hypergeom.pmf(x, total, wins, n1) for x in range(max(0, wins - n2), min(wins, n1) + 1)}
    return sum(p for p in probs.values() if p <= probs[a] * (1 + 1e-7))


@pytest.mark.parametrize(
    "s1,n1,s2,n2",
    [
        (180, 200, 120, 200),
        (40, 50, 30, 50),
        (3, 5, 1, 6),
        (10, 10, 8, 10),
        (0, 4, 4, 4),
        (50, 50, 50, 50),
        (900, 1000, 880, 1000),
    ],
)
def test_proportion_test_matches_statsmodels_and_brute_force(s1, n1, s2, n2):
    p, kind = statistics.proportion_test(s1, n1, s2, n2)
    table = np.array([[s1, n1 - s1], [s2, n2 - s2]])
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    if expected.min() >= 5:
        assert kind == "z"
        assert p == pytest.approx(proportions_ztest([s1, s2], [n1, n2])[1], rel=1e-9)
    else:
        assert kind == "fisher"
        assert p == pytest.approx(_fisher_brute(s1, n1, s2, n2), rel=1e-9)
    assert statistics.proportion_test(s1, n1, 0, 0) == (pytest.approx(float("nan"), nan_ok=True), "")


def test_bh_matches_statsmodels():
    p = np.array([0.001, 0.2, np.nan, 0.03, 0.04, 0.5, 0.0001, np.nan])
    q = statistics.bh_qvalues(p)
    ok = ~np.isnan(p)
    assert q[ok] == pytest.approx(multipletests(p[ok], method="fdr_bh")[1], rel=1e-12)
    assert np.isnan(q[~ok]).all()
    assert statistics.bh_qvalues([]).size == 0


def _u_normal_p(x: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney two-sided p by brute force: U from every pair, tie-corrected normal, continuity 0.5."""
    u = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
    n1, n2 = len(x), len(y)
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - (counts**3 - counts).sum() / (n * (n - 1))))
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma
    return float(2 * stats.norm.sf(z))


def test_mann_whitney_matches_brute_force():
    rng = np.random.default_rng(5)
    x, y = np.round(rng.lognormal(1, 1, 40), 1), np.round(rng.lognormal(1.4, 1, 35), 1)  # ties on purpose
    assert statistics.mann_whitney(x, y) == pytest.approx(_u_normal_p(x, y), rel=1e-9)
    assert math.isnan(statistics.mann_whitney([], [1.0, 2.0]))
    assert statistics.mann_whitney([1.0, np.nan, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


# -------------------------------------------------------------------------- the seeded regression
def _runs(agent: str, start: dt.datetime, wins: int, fails: int, seconds: float, rng) -> list[dict]:
    out = []
    for i, success in enumerate([True] * wins + [False] * fails):
        out.append(
            {
                "agent_id": agent,
                "task_type": "code",
                "success": success,
                "timestamp": start + dt.timedelta(minutes=20 * i + 1),
                "execution_time": float(np.round(seconds * rng.lognormal(0, 0.3), 3)),
                "tokens_used": 10,
            }
        )
    return out


@pytest.fixture
def regression_lab(lab):
    """One agent drops from 90 % to 60 % in the last week; one stays at 85 %; one is always right; one
    never runs; one only ran this week; plus a week of NULL outcomes for the steady agent."""
    rng = np.random.default_rng(0)
    lab.insert(
        "agents",
        [
            {"id": a, "name": a, "agent_type": "coder", "system_name": s}
            for a, s in [("falling", "S1"), ("steady", "S1"), ("perfect", "S2"), ("idle", "S2"), ("newcomer", "S2")]
        ],
    )
    prev, cur = NOW - dt.timedelta(days=14), NOW - dt.timedelta(days=7)
    rows = (
        _runs("falling", prev, 180, 20, 10.0, rng)
        + _runs("falling", cur, 120, 80, 10.0, rng)
        + _runs("steady", prev, 170, 30, 5.0, rng)
        + _runs("steady", cur, 170, 30, 5.0, rng)
        + _runs("perfect", prev, 40, 0, 3.0, rng)
        + _runs("perfect", cur, 45, 0, 9.0, rng)
        + _runs("newcomer", cur, 5, 1, 2.0, rng)
    )
    rows += [
        {
            "agent_id": "steady",
            "task_type": "code",
            "success": None,
            "execution_time": None,
            "timestamp": cur + dt.timedelta(hours=3 * i),
        }
        for i in range(10)
    ]
    lab.insert("agent_performance", rows)
    return lab


def test_seeded_regression_is_flagged(regression_lab):
    got = regression_lab.compare_windows(7, now=NOW).set_index("agent_id")
    falling, steady, perfect = got.loc["falling"], got.loc["steady"], got.loc["perfect"]
    assert falling["significant"] and falling["verdict"] == "regression"
    assert falling["success_rate_previous"] == pytest.approx(90)
    assert falling["success_rate_current"] == pytest.approx(60)
    assert falling["rate_change"] == pytest.approx(-30)
    assert falling["p_value"] == pytest.approx(proportions_ztest([180, 120], [200, 200])[1], rel=1e-9)
    assert not steady["significant"] and steady["verdict"] == "no significant change"
    assert steady["p_value"] == pytest.approx(1.0) and steady["runs_current"] == 210  # NULL outcomes: runs only
    assert (steady["successful_current"], steady["failed_current"]) == (170, 30)
    # all successes in both windows: Fisher, p = 1, intervals up to 100 %
    assert perfect["test"] == "fisher" and perfect["p_value"] == pytest.approx(1.0) and not perfect["significant"]
    assert perfect["success_rate_current_high"] == pytest.approx(100)
    assert perfect["time_significant"] and perfect["median_time_change"] > 0  # 3 s -> 9 s is real
    idle = got.loc["idle"]
    assert idle["runs_previous"] == idle["runs_current"] == 0 and idle["verdict"] == "not enough data"
    assert math.isnan(idle["p_value"]) and math.isnan(idle["success_rate_current_low"])
    assert got.loc["newcomer", "verdict"] == "not enough data" and got.loc["newcomer", "runs_current"] == 6
    frame = regression_lab.compare_windows(7, now=NOW)
    assert frame["agent_id"].iloc[0] == "falling"  # significant changes first
    # q-values: BH over the rows that had a test
    tested = frame["p_value"].notna()
    assert frame.loc[tested, "q_value"].to_numpy() == pytest.approx(
        multipletests(frame.loc[tested, "p_value"], method="fdr_bh")[1], rel=1e-9
    )
    assert frame.attrs["current_window"] == (NOW - dt.timedelta(days=7), NOW)


def test_compare_windows_by_system_and_bad_input(regression_lab):
    got = regression_lab.compare_windows(7, now=NOW, by="system_name").set_index("system_name")
    assert got.loc["S1", "runs_previous"] == 400 and got.loc["S1", "successful_current"] == 290
    with pytest.raises(InvalidInput):
        regression_lab.compare_windows(7, by="nope")
    with pytest.raises(InvalidInput):
        regression_lab.compare_windows(0)


# ------------------------------------------------------------------ against pandas on random data
def _reference(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    edge, start = pd.Timestamp(NOW) - pd.Timedelta(days=7), pd.Timestamp(NOW) - pd.Timedelta(days=14)
    runs = runs[(runs["timestamp"] >= start) & (runs["timestamp"] <= pd.Timestamp(NOW))].copy()
    runs["period"] = np.where(runs["timestamp"] >= edge, "current", "previous")
    success = runs["success"].astype("boolean")
    runs["win"], runs["fail"] = (success == True).fillna(False), (success == False).fillna(False)  # noqa: E712
    out = {}
    for key, g in runs.groupby(keys, dropna=False):
        key = key[0] if len(keys) == 1 else key
        sides = {w: g[g["period"] == w] for w in ("previous", "current")}
        row = {}
        for w, side in sides.items():
            row[f"runs_{w}"] = len(side)
            row[f"successful_{w}"], row[f"failed_{w}"] = int(side["win"].sum()), int(side["fail"].sum())
            row[f"median_time_{w}"] = side["execution_time"].astype(float).median()
        k1, n1 = row["successful_previous"], row["successful_previous"] + row["failed_previous"]
        k2, n2 = row["successful_current"], row["successful_current"] + row["failed_current"]
        if not (n1 and n2):
            row["p_value"] = np.nan
        elif min(n1, n2) * min(k1 + k2, n1 + n2 - k1 - k2) / (n1 + n2) < 5:  # smallest expected count
            row["p_value"] = _fisher_brute(k1, n1, k2, n2)
        else:
            row["p_value"] = proportions_ztest([k1, k2], [n1, n2])[1]
        t1, t2 = (side["execution_time"].astype(float).dropna().to_numpy() for side in sides.values())
        row["time_p_value"] = stats.mannwhitneyu(t1, t2).pvalue if len(t1) and len(t2) else np.nan
        out[key] = row
    ref = pd.DataFrame.from_dict(out, orient="index")
    ref.index.names = keys
    ref["q_value"] = np.nan
    ok = ref["p_value"].notna()
    ref.loc[ok, "q_value"] = multipletests(ref.loc[ok, "p_value"], method="fdr_bh")[1]
    return ref


@pytest.mark.parametrize("by", ["agent_id", "task_type", "model"])
def test_compare_windows_matches_pandas(data_lab, by):
    if by == "model":
        usage = data_lab.table("api_usage")
        status = usage["status_code"].astype(float)
        runs = usage.assign(
            success=np.where(status.isna(), None, status < 400), execution_time=usage["response_time"].astype(float)
        )
        keys = ["provider", "model"]
    else:
        runs, keys = data_lab.table("agent_performance"), [by]
    ref = _reference(runs, keys)
    got = data_lab.compare_windows(7, now=NOW, by=by)
    got = got[(got["runs_previous"] + got["runs_current"]) > 0].set_index(keys).sort_index()
    ref = ref.sort_index()
    assert len(got) == len(ref) and got.index.equals(ref.index)
    for col in ref.columns:
        assert got[col].to_numpy(float) == pytest.approx(ref[col].to_numpy(float), rel=1e-7, nan_ok=True), col
    low, high = statistics.wilson_interval(got["successful_current"], got["successful_current"] + got["failed_current"])
    for i, (k, f) in enumerate(zip(got["successful_current"], got["failed_current"])):
        if k + f:
            ci = stats.binomtest(int(k), int(k + f)).proportion_ci(method="wilson")
            assert (got["success_rate_current_low"].iloc[i], got["success_rate_current_high"].iloc[i]) == pytest.approx(
                (100 * ci.low, 100 * ci.high), rel=1e-9, abs=1e-9
            )
    assert got["success_rate_current_low"].to_numpy() == pytest.approx(low, nan_ok=True)
    assert high.size == len(got)


def test_compare_agents_matches_pandas(data_lab):
    runs = data_lab.table("agent_performance")
    runs = runs[(runs["timestamp"] >= pd.Timestamp(NOW) - pd.Timedelta(days=30)) & (runs["timestamp"] <= NOW)]
    runs = runs[runs["task_type"] == "code"]
    result = data_lab.compare_agents("code", 30, now=NOW)
    agents = result.agents.set_index("agent_id")
    assert set(agents.index) == set(runs["agent_id"])
    success = runs["success"].astype("boolean")
    wins = (success == True).groupby(runs["agent_id"]).sum()  # noqa: E712
    fails = (success == False).groupby(runs["agent_id"]).sum()  # noqa: E712
    for agent in agents.index:
        assert (agents.loc[agent, "successful_tasks"], agents.loc[agent, "failed_tasks"]) == (wins[agent], fails[agent])
        ci = stats.binomtest(int(wins[agent]), int(wins[agent] + fails[agent])).proportion_ci(method="wilson")
        assert agents.loc[agent, "success_rate_low"] == pytest.approx(100 * ci.low, rel=1e-9, abs=1e-9)
    assert result.agents["success_rate"].is_monotonic_decreasing
    pairs = result.pairs
    assert len(pairs) == math.comb(len(agents), 2)
    expected = set(itertools.combinations(result.agents["agent_id"], 2))
    assert set(zip(pairs["agent_id_a"], pairs["agent_id_b"])) == expected
    assert (pairs["rate_difference"] >= 0).all()
    assert pairs["q_value"].to_numpy() == pytest.approx(multipletests(pairs["p_value"], method="fdr_bh")[1], rel=1e-9)
    for row in pairs.itertuples():
        t1 = runs.loc[runs["agent_id"] == row.agent_id_a, "execution_time"].dropna().astype(float)
        t2 = runs.loc[runs["agent_id"] == row.agent_id_b, "execution_time"].dropna().astype(float)
        assert row.time_p_value == pytest.approx(stats.mannwhitneyu(t1, t2).pvalue, rel=1e-9)
    empty = data_lab.compare_agents("nothing-like-this", 30, now=NOW)
    assert empty.agents.empty and empty.pairs.empty
    with pytest.raises(InvalidInput):
        data_lab.compare_agents("", 30)
