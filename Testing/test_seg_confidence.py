"""Voxel uncertainty, case features, calibration and review threshold."""

import numpy as np

from lungai.seg.confidence import FEATURES, case_features, choose_review_threshold, confidence, fit_calibration
from lungai.seg.uncertainty import binary_entropy, mutual_information, predictive_entropy


def test_entropy_and_mutual_information():
    assert abs(binary_entropy(np.array([0.5]))[0] - 1.0) < 1e-5
    assert binary_entropy(np.array([0.0]))[0] < 1e-4
    agree = np.full((3, 4), 0.5)
    disagree = np.array([[0.0] * 4, [1.0] * 4, [0.5] * 4])
    assert np.allclose(mutual_information(agree), 0, atol=1e-5)        # same total uncertainty, no disagreement
    assert np.all(mutual_information(disagree) > 0.5)
    assert np.allclose(predictive_entropy(agree), predictive_entropy(disagree), atol=1e-5)


def test_case_features_rank_agreement():
    sure = np.zeros((3, 10, 10, 10), np.float32)
    sure[:, 3:7, 3:7, 3:7] = 0.95
    unsure = sure.copy()
    unsure[1] = 0.0
    unsure[2, 3:7, 3:7, 3:7] = 0.55
    fs, fu = case_features(sure, 0.001), case_features(unsure, 0.001)
    assert fs["agreement"] == 1.0 and fu["agreement"] < 0.7
    assert fu["mean_entropy"] > fs["mean_entropy"]
    empty = case_features(np.zeros((2, 5, 5, 5), np.float32), 0.001)
    assert empty["agreement"] == 1.0 and empty["uncertain_ratio"] == 0.0
    assert confidence(fs, None) > confidence(fu, None)      # uncalibrated = agreement


def test_calibration_learns_dice_and_threshold_flags_failures():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(60, len(FEATURES)))
    dice = np.clip(0.1 + 0.8 * X[:, 0] + rng.normal(0, 0.05, 60), 0, 1)
    cal = fit_calibration(X, dice)
    assert cal["pearson_r_cv"] > 0.9 and cal["coef"][0] > 0.5
    conf = np.array([confidence(dict(zip(FEATURES, x)), cal) for x in X])
    thr, how = choose_review_threshold(conf, dice, fail_dice=0.5)
    assert "Youden" in how
    flagged = conf < thr
    assert flagged[dice < 0.4].mean() > 0.8 and (~flagged)[dice > 0.7].mean() > 0.8


def test_too_few_validation_cases_leave_the_score_uncalibrated():
    import numpy as np

    from lungai.seg.confidence import fit_calibration

    cal = fit_calibration(np.array([[0.8, 0.1, 0.05, 1.0]]), np.array([0.7]))
    assert cal["fitted"] is False and cal["n_cases"] == 1 and "at least 3" in cal["how"]
