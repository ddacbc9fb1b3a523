"""The Flappy rollout summary: deaths predicted in time, phantom deaths (too early or never real) and missed deaths
(never predicted) are told apart, so a model that rarely dies cannot look good on phantom deaths alone."""

from __future__ import annotations

import math

from worldmodels.flappy.evaluate import summarize_rollouts


def row(true_death, model_death, drift=10):
    return {"drift_horizon": drift, "true_death": true_death, "model_death": model_death, "malformed": 0,
            "death_within_1": true_death is not None and model_death is not None and abs(model_death - true_death) <= 1,
            "phantom_death": model_death is not None and (true_death is None or model_death < true_death - 1)}


def test_deaths_are_in_time_early_or_missed():
    rows = [row(30, 31), row(30, 20), row(30, None), row(30, None), row(None, 50), row(None, None)]
    s = summarize_rollouts(rows)
    assert s["episodes"] == 6
    assert s["deaths_within_1"] == 0.25  # of the 4 true deaths: one in time
    assert s["missed_death_rate"] == 0.5  # two never predicted
    assert math.isclose(s["phantom_death_rate"], 2 / 6)  # too early once, in a game without death once


def test_no_true_death_gives_nan_rates():
    s = summarize_rollouts([row(None, None), row(None, 5)])
    assert math.isnan(s["deaths_within_1"]) and math.isnan(s["missed_death_rate"]) and s["phantom_death_rate"] == 0.5
