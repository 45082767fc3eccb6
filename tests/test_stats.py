"""filterlab.training.stats against published values and exact enumeration: Wilson, McNemar, seed spread."""

import math

import pytest

from filterlab.training import stats


def test_wilson_matches_the_published_interval():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81 of 263 -> 0.2553 to 0.3662.
    low, high = stats.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # At the edges the interval stays inside [0, 1] and still has width.
    assert stats.wilson(0, 10)[0] == 0.0 and stats.wilson(0, 10)[1] > 0.2
    assert stats.wilson(10, 10)[1] == pytest.approx(1.0) and stats.wilson(10, 10)[0] < 0.8


def test_wilson_on_the_offline_test_split_is_about_half_a_point_each_side():
    low, high = stats.wilson(975, 1000)
    assert 0.962 < low < 0.975 < high < 0.984


@pytest.mark.parametrize(("correct", "total"), [(-1, 10), (11, 10), (0, 0)])
def test_wilson_rejects_impossible_counts(correct, total):
    with pytest.raises(ValueError):
        stats.wilson(correct, total)


def test_mcnemar_exact_is_the_two_sided_binomial_tail():
    # 1 vs 9 discordant digits: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024.
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9)
    assert stats.mcnemar_exact(5, 5) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0


def test_discordant_counts_and_tie_verdict():
    best = [True] * 90 + [False] * 10
    close = [True] * 88 + [False] * 12  # two more mistakes: indistinguishable
    far = [True] * 60 + [False] * 40
    assert stats.discordant(best, close) == (2, 0)
    assert stats.tied_with(best, close)[0] is True
    tied, p = stats.tied_with(best, far)
    assert tied is False and p < 1e-6
    with pytest.raises(ValueError):
        stats.discordant(best, close[:-1])


def test_across_seeds_is_mean_and_sample_sd():
    spread = stats.across_seeds([0.96, 0.97, 0.98])
    assert spread == {"seeds": 3, "accuracy_seed_mean": 0.97, "accuracy_seed_sd": pytest.approx(0.01)}
    assert math.isclose(stats.across_seeds([0.5, 0.5])["accuracy_seed_sd"], 0.0)
    with pytest.raises(ValueError):
        stats.across_seeds([0.9])
