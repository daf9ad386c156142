"""Voxel uncertainty, case features, calibration and review threshold."""

import numpy as np
import pytest

from lungai.errors import InputError
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
    assert empty["agreement"] == 0.0 and empty["uncertain_ratio"] == 0.0     # no tumour found: nothing agreed on
    assert confidence(empty, None) < confidence(fu, None)
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

    cal = fit_calibration(np.array([[0.8, 0.1, 0.05, 1.0, 0.9, 0.0]]), np.array([0.7]))
    assert cal["fitted"] is False and cal["n_cases"] == 1 and "at least 10" in cal["how"]
    # QA: a 6-feature fit on 3 cases was "calibrated" (cross-validated r 0.74, then -0.20 one epoch later) and gave a
    # 0.22-Dice result confidence 1.00: at least MIN_CALIBRATION_CASES cases are fitted
    from lungai.seg.confidence import MIN_CALIBRATION_CASES

    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, size=(MIN_CALIBRATION_CASES, 6))
    dice = np.clip(0.1 + 0.8 * X[:, 0], 0, 1)
    few = fit_calibration(X[:-1], dice[:-1])
    assert few["fitted"] is False and f"only {MIN_CALIBRATION_CASES - 1} validation cases" in few["how"]
    enough = fit_calibration(X, dice)
    assert enough["fitted"] is True and "5-fold cross-validated" in enough["how"]


def test_automatic_mode_is_a_feature_and_old_tables_get_it_from_the_mode(tmp_path):
    """Automatic-mode results (is the kept region the tumour at all?) get their own offset: fitted on cases where
    they score lower at the same map features, it lowers their confidence; a table from before the feature
    existed gets it from its roi_mode column, one without the flip check is refused with the fix."""
    import json

    import pandas as pd
    import pytest

    from lungai.errors import InputError
    from lungai.seg.calibrate import fit_tables

    assert case_features(np.zeros((2, 4, 4, 4), np.float32), 0.001, automatic=True)["automatic_mode"] == 1.0
    assert "flip_consistency" not in case_features(np.zeros((2, 4, 4, 4), np.float32), 0.001)
    rng = np.random.default_rng(3)
    n = 80
    auto = np.arange(n) % 4 == 0
    agreement, flips = rng.uniform(0.3, 1, n), rng.uniform(0.3, 1, n)
    dice = np.clip(0.5 * agreement + 0.5 * flips - 0.4 * auto + rng.normal(0, 0.03, n), 0, 1)
    df = pd.DataFrame({"case": [f"c{i}" for i in range(n)], "dice": dice, "volume_true_ml": 1.0,
                       "volume_pred_ml": 1.0, "false_volume_ml": 0.0, "hd95_mm": 1.0, "confidence": 0.0,
                       "needs_review": False, "roi_mode": np.where(auto, "lungs", "whole"),
                       "f_agreement": agreement, "f_mean_entropy": 0.5, "f_uncertain_ratio": 0.5,
                       "f_log_volume": 0.0, "f_flip_consistency": flips})
    meta = {}
    fit_tables(tmp_path, meta, {"ensemble": df}, mc_passes=8, n_members=3)
    cal = meta["calibration"]["ensemble"]
    assert cal["features"] == FEATURES and cal["coef"][FEATURES.index("automatic_mode")] < -0.2
    assert cal["coef"][FEATURES.index("flip_consistency")] > 0.2 and cal["pearson_r_cv"] > 0.9
    written = pd.read_csv(tmp_path / "validation_ensemble.csv")
    assert (written["f_automatic_mode"] == auto).all()
    assert json.loads((tmp_path / "model.json").read_text())["calibration"]["ensemble"]["features"] == FEATURES
    with pytest.raises(InputError, match="flip_consistency"):
        fit_tables(tmp_path, {}, {"ensemble": df.drop(columns=["f_flip_consistency"])}, mc_passes=8, n_members=3)


def test_summary_scores_tumour_cases_and_reports_false_positives_apart():
    import pandas as pd

    from lungai.seg.evaluate import summarize, summary_text

    df = pd.DataFrame({"dice": [0.9, 0.5, 0.1, 1.0, 0.0], "confidence": [0.8, 0.5, 0.2, 0.3, 0.1],
                       "volume_true_ml": [2.0, 1.0, 0.5, 0.0, 0.0], "volume_pred_ml": [2.1, 0.6, 0.1, 0.0, 0.4],
                       "hd95_mm": [1.0, 2.0, 5.0, float("nan"), float("nan")],
                       "needs_review": [False, True, True, True, True]})
    s = summarize(df)
    assert s["n_cases"] == 3 and s["mean_dice"] == 0.5 and s["n_needs_review"] == 2
    assert s["pearson_r_confidence_dice"] > 0.99          # tumour-free rows (Dice 1 / 0) do not enter r
    assert s["tumour_free"] == {"n_cases": 2, "false_positive_rate": 0.5, "mean_false_volume_ml": 0.2,
                                "mean_volume_per_false_tumour_ml": 0.4}
    text = summary_text(s)
    assert "3 cases with a tumour: Dice mean 0.500" in text, text
    assert "; 2 tumour-free cases: a tumour found in 50 % (mean 0.20 ml over all 2, 0.40 ml per false tumour)" in text
    text = summary_text(summarize(df.iloc[[0, 4]]))          # QA wording61: "1 tumour-free: ... over all 1"
    assert "1 case with a tumour: Dice mean 0.900" in text, text
    assert "; 1 tumour-free case: a tumour found in 100 % (mean 0.40 ml over it, 0.40 ml per false tumour)" in text
    assert "tumour_free" not in summarize(df.iloc[:3])
    assert "automatic_mode" not in s
    df["roi_mode"] = ["whole", "lungs", "lungs", "whole", "lungs"]
    df["false_volume_ml"] = [0.1, 3.0, 5.0, 0.0, 0.4]
    a = summarize(df)["automatic_mode"]          # whole CTs with a tumour, reported apart as well
    assert a == {"n_cases": 2, "mean_dice": 0.3, "median_dice": 0.3, "mean_false_volume_ml": 4.0, "n_needs_review": 2}
    assert "2 whole CTs in automatic mode: Dice mean 0.300" in summary_text(summarize(df))
    assert "; of them 1 whole CT in automatic mode: Dice mean 0.500" in summary_text(summarize(df.iloc[[0, 1]]))


def test_mean_hd95_counts_the_missed_tumours_it_leaves_out():
    """HD95 is NaN for a missed tumour (empty prediction); the mean over the rest (a miss + a 2 mm case -> 2.0 mm)
    was reported without saying it stood for 1 of the 2 cases."""
    import pandas as pd

    from lungai.seg.evaluate import report_text, summarize, summary_text, test_report

    df = pd.DataFrame({"dice": [0.0, 0.8], "confidence": [0.2, 0.7], "volume_true_ml": [1.0, 2.0],
                       "volume_pred_ml": [0.0, 2.1], "hd95_mm": [float("nan"), 2.0], "needs_review": [True, False],
                       "size_band": ["10-30 mm"] * 2, "size_mm": [12.0, 14.0]})
    s = summarize(df)
    assert s["n_cases"] == 2 and s["mean_hd95_mm"] == 2.0 and s["n_hd95"] == 1
    assert "HD95 2.0 mm (1 of 2 cases; 1 without a tumour found)" in summary_text(s)
    band = test_report({"ensemble": df})["ensemble"]["size_bands"]["10-30 mm"]
    assert band["n"] == 2 and band["n_hd95"] == 1 and band["mean_hd95_mm"] == 2.0
    assert "1 of 2 cases; 1 without a tumour found" in report_text(test_report({"ensemble": df}))
    assert summarize(df.iloc[1:])["n_hd95"] == 1 and "HD95 2.0 mm (1 of 1 case)" in summary_text(summarize(df.iloc[1:]))
    missed = summarize(df.iloc[:1])
    assert missed["mean_hd95_mm"] is None and missed["n_hd95"] == 0


def test_large_tumour_group_is_the_30_mm_and_larger_bands():
    """The ">= 30 mm" group (issue #13's target) left out a tumour of exactly 30.0 mm ("> 30"), which size_band
    puts in "30-60 mm": the group and the bands must count the same cases."""
    import pandas as pd

    from lungai.seg.evaluate import is_large, report_text, size_band, test_report

    for mm in (0.0, 9.9, 10.0, 29.9, 30.0, 30.1, 59.9, 60.0, 111.0):
        assert bool(is_large(mm)) == (size_band(mm) in ("30-60 mm", "> 60 mm")), mm
    sizes = [12.0, 30.0, 45.0, 62.4]
    df = pd.DataFrame({"dice": [0.5, 0.125, 0.7, 0.8], "confidence": [0.5, 0.6, 0.7, 0.8],
                       "volume_true_ml": 1.0, "volume_pred_ml": 1.0, "hd95_mm": 3.0, "needs_review": False,
                       "size_mm": sizes, "size_band": [size_band(m) for m in sizes]})
    rep = test_report({"ensemble": df})["ensemble"]
    bands, large = rep["size_bands"], rep["size_groups"][">= 30 mm"]
    assert large["n"] == bands["30-60 mm"]["n"] + bands["> 60 mm"]["n"] == 3
    assert large["mean_dice"] == round((0.125 + 0.7 + 0.8) / 3, 4)
    assert sum(b["n"] for b in bands.values()) == 4       # the bands still split the cases
    assert ">= 30 mm: n=3" in report_text({"ensemble": rep})


def test_split_from_warns_when_the_evaluated_model_trained_on_the_test_cases():
    """seg_test_report.py --split-from scored a model on another model's test split without a word when that
    model had trained on those cases (the default: all 147 of the large model's test cases)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from seg_test_report import split_overlap_warning

    split = {"val_cases": ["v1", "v2"], "test_cases": ["t1", "t2", "t3"]}
    w = split_overlap_warning({"train_cases": ["a", "t2"], "val_cases": ["v1"]}, split, "m")
    assert w and "1 of 3 test cases are in its training cases" in w and "not an unbiased test" in w
    assert split_overlap_warning({"train_cases": ["a"], "val_cases": ["v1"]}, split) is None
    # no training cases listed (the default model): test cases outside its validation / test split were its training
    w = split_overlap_warning({"val_cases": ["v1", "v2"]}, split, "default")
    assert w and "3 of 3 test cases" in w and "default may have been trained on them" in w
    assert split_overlap_warning({"val_cases": ["v1"], "test_cases": ["t1", "t2", "t3"]}, split) is None


def test_dice_sd_is_the_sample_sd_and_not_available_for_one_case():
    """'mean +- SD' used the population SD (ddof=0) and showed '+- 0.000' for a single case."""
    import pandas as pd

    from lungai.seg.evaluate import report_text, sample_sd, summarize, summary_text, test_report

    df = pd.DataFrame({"dice": [0.9, 0.5, 0.1], "confidence": [0.8, 0.5, 0.2], "volume_true_ml": [2.0, 1.0, 0.5],
                       "volume_pred_ml": [2.1, 0.6, 0.1], "hd95_mm": [1.0, 2.0, 5.0],
                       "needs_review": [False, True, True], "size_band": ["< 10 mm"] * 3})
    assert summarize(df)["std_dice"] == 0.4 and abs(sample_sd([0.9, 0.5, 0.1]) - 0.4) < 1e-9
    one = summarize(df.iloc[:1])
    assert one["std_dice"] is None and "Dice mean 0.900 +- n/a" in summary_text(one)
    rep = test_report({"ensemble": df.iloc[:1]})
    assert rep["ensemble"]["size_bands"]["< 10 mm"]["std_dice"] is None and "+- n/a" in report_text(rep)
    assert test_report({"ensemble": df})["ensemble"]["size_bands"]["< 10 mm"]["std_dice"] == 0.4


def test_failed_cases_are_left_out_of_the_summary_and_counted():
    import pandas as pd

    from lungai.seg.evaluate import summarize, summary_text

    df = pd.DataFrame({"case": ["a", "b", "c"], "dice": [0.9, 0.5, float("nan")], "confidence": [0.8, 0.5, None],
                       "volume_true_ml": [2.0, 1.0, None], "volume_pred_ml": [2.1, 0.6, None],
                       "hd95_mm": [1.0, 2.0, None], "needs_review": [False, True, None],
                       "error": ["", "", "no lungs found in the CT"]})
    s = summarize(df)
    assert s["n_cases"] == 2 and s["mean_dice"] == 0.7 and s["n_failed"] == 1 and "tumour_free" not in s
    assert "1 case failed and is left out" in summary_text(s)
    assert summarize(df.iloc[2:])["n_failed"] == 1
    # the test report when every case failed: no tumour column at all (error rows only)
    from lungai.seg.evaluate import test_report

    only = pd.DataFrame([{"case": "a", "patient": "a", "dice": float("nan"), "error": "no lungs found"}])  # as written
    rep = test_report({"ensemble": only})["ensemble"]
    assert rep["summary"]["n_failed"] == 1 and rep["size_bands"] == {} and rep["hard_cases"] == {}


def test_postprocess_drops_tubes_in_automatic_mode_and_keeps_the_seed_component():
    from lungai.seg.postprocess import MAX_ELONGATION, elongation, keep_components

    sp = (2.0, 1.0, 1.0)
    a = np.zeros((20, 60, 60), bool)
    zz, yy, xx = np.ogrid[:20, :60, :60]
    ball = (2.0 * (zz - 10)) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2 <= 36     # 12 mm sphere
    tube = (np.abs(yy - 45) <= 1) & (np.abs(xx - 45) <= 1) & (zz >= 0)       # 3 mm x 40 mm vessel
    speck = (zz == 2) & (yy == 2) & (xx == 58)                                # 0.002 ml
    a |= ball | tube | speck
    assert elongation(ball, sp) < 1.2 and elongation(tube, sp) > 10
    assert elongation(speck, sp) < 2.5                          # one voxel, one slice: finite
    kept, dropped = keep_components(a, sp, max_elongation=MAX_ELONGATION)
    assert np.array_equal(kept, ball)
    assert dropped["n_small"] == 1 and dropped["n_elongated"] == 1 and dropped["elongated_ml"] > 0.2
    kept, dropped = keep_components(a, sp)                      # seed / ROI mode: shapes are not judged
    assert np.array_equal(kept, ball | tube) and dropped["n_elongated"] == 0
    kept, _ = keep_components(a, sp, seed_idx=(10, 45, 44))
    assert np.array_equal(kept, tube)                           # the user's seed wins


def test_postprocess_keeps_the_component_nearest_the_seed_in_mm():
    """A seed in no region keeps the region nearest to it in mm (as seed_distance_mm measures), not in voxels: on
    3 mm slices a region 3 slices above the seed (9 mm) is farther than one 5 in-plane voxels (4.9 mm) away."""
    from lungai.seg.postprocess import keep_components

    b = np.zeros((20, 40, 40), bool)
    b[13:16, 18:23, 18:23] = True                # 3 slices above the seed: 9 mm (3 voxels)
    b[8:13, 18:23, 25:30] = True                 # 5 in-plane voxels away: 4.9 mm (5 voxels)
    kept, _ = keep_components(b, (3.0, 0.977, 0.977), (10, 20, 20))
    assert kept[10, 20, 27] and not kept[14, 20, 20]


def test_postprocess_drops_components_lying_mostly_outside_the_lungs():
    from lungai.seg.postprocess import MIN_IN_LUNGS, keep_components

    sp = (2.0, 1.0, 1.0)
    zz, yy, xx = np.ogrid[:20, :60, :60]
    inside = (2.0 * (zz - 10)) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2 <= 36      # a nodule in the lung
    border = (2.0 * (zz - 10)) ** 2 + (yy - 45) ** 2 + (xx - 30) ** 2 <= 36      # straddles the lung edge
    lungs = np.zeros((20, 60, 60), bool)
    lungs[:, :, :35] = True                       # the "border" blob is ~ 90 % inside
    outside = (2.0 * (zz - 10)) ** 2 + (yy - 45) ** 2 + (xx - 50) ** 2 <= 36     # mediastinal-border mark
    kept, dropped = keep_components(inside | border | outside, sp, lungs=lungs)
    assert np.array_equal(kept, inside | border)
    assert dropped["n_outside_lungs"] == 1 and dropped["outside_lungs_ml"] > 0.1
    lungs[:, :, 29:] = False                      # now the border blob is ~ 40 % inside: dropped
    assert (border & lungs).sum() < MIN_IN_LUNGS * border.sum()
    kept, dropped = keep_components(inside | border | outside, sp, lungs=lungs)
    assert np.array_equal(kept, inside) and dropped["n_outside_lungs"] == 2


def test_the_implant_calibration_benchmark_compares_the_fits_on_each_part():
    """benchmarks/seg_implant_calibration.py: A (the validation cases' fit) scored on the implants, B refitted on both
    (CV per part), B + the kept-share feature; a Dice the features explain gives r near 1 in every row."""
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from seg_implant_calibration import compare

    rng = np.random.default_rng(0)

    def table(n, mode):
        flip = rng.uniform(0.5, 1.0, n)
        return pd.DataFrame({"volume_true_ml": 1.0, "volume_pred_ml": 1.0, "roi_mode": mode, "dice": 1.6 * flip - 0.7,
                             "f_agreement": rng.uniform(0, 1, n), "f_mean_entropy": rng.uniform(0, 1, n),
                             "f_uncertain_ratio": rng.uniform(0, 1, n), "f_log_volume": np.log10(1.01),
                             "f_flip_consistency": flip})

    rows = compare(table(60, "whole image (crop)"), table(30, "seed"), seeds=2)
    assert [r[0] for r in rows] == ["A (shipped fit)", "B", "B + share"]
    assert all(r[1] > 0.95 and r[2] > 0.95 for r in rows) and np.isnan(rows[0][3]) and rows[1][3] > 0.95


def test_kept_region_features_describe_the_kept_tumour_not_the_box():
    """A small tumour kept next to a large region the members agree on: the box's agreement is that region's, the
    kept region's is the tumour's own; an empty kept region gives an empty map's values, none (automatic mode)
    the box's."""
    from lungai.seg.confidence import KEPT_FEATURES, kept_region_features

    probs = np.zeros((3, 30, 30, 30), np.float32)
    probs[:, 2:14, 2:14, 2:14] = 0.95                  # a large region all members mark
    probs[:2, 22:25, 22:25, 22:25] = 0.9               # the kept tumour: two of three members
    probs[2, 22:25, 22:25, 22:25] = 0.2
    kept = probs.mean(0) > 0.5
    kept[:15] = False
    box = case_features(probs, 0.001)
    k = kept_region_features(probs, kept, 0.001)
    assert sorted(k) == sorted(KEPT_FEATURES)
    assert box["agreement"] > 0.95 and abs(k["kept_agreement"] - 1 / 3) < 1e-6
    assert abs(k["kept_log_volume"] - np.log10(27 * 0.001 + 0.01)) < 1e-6
    assert k["kept_mean_entropy"] > box["mean_entropy"]
    empty = kept_region_features(probs, np.zeros_like(kept), 0.001)
    assert empty == {"kept_agreement": 0.0, "kept_mean_entropy": 0.0, "kept_uncertain_ratio": 0.0,
                     "kept_log_volume": -2.0}
    assert kept_region_features(probs, None, 0.001, box) == {"kept_" + f: box[f] for f in FEATURES[:4]}


def _kept_table(n: int = 60, seed: int = 5):
    """A validation table whose Dice follows the kept region's agreement (the box's is mostly noise); 20 rows in
    seed mode."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    kept_agreement = rng.uniform(0.2, 1, n)
    dice = np.clip(kept_agreement + rng.normal(0, 0.03, n), 0, 1)
    return pd.DataFrame({"case": [f"c{i}" for i in range(n)], "dice": dice, "volume_true_ml": 1.0,
                         "volume_pred_ml": 1.0, "false_volume_ml": 0.0, "hd95_mm": 1.0, "confidence": 0.0,
                         "needs_review": False, "roi_mode": np.where(np.arange(n) < 20, "seed", "whole"),
                         "f_agreement": rng.uniform(0, 1, n) + 0.3 * kept_agreement, "f_mean_entropy": 0.5,
                         "f_uncertain_ratio": 0.5,
                         "f_log_volume": 0.0, "f_flip_consistency": 0.9, "f_automatic_mode": 0.0,
                         "f_kept_agreement": kept_agreement, "f_kept_mean_entropy": 0.4,
                         "f_kept_uncertain_ratio": 0.3, "f_kept_log_volume": 0.5})


def test_a_calibration_on_the_kept_region_is_fitted_recorded_and_checked(tmp_path):
    """``fit_tables(features="kept-region")`` fits on the kept_* columns (seed-mode implants counted), records the
    set, and a table without them or an unknown set is refused with the fix."""
    import json

    import pandas as pd
    import pytest

    from lungai.errors import InputError
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.confidence import KEPT_REGION_FEATURES, uses_kept_region

    df = _kept_table()
    meta = {}
    fit_tables(tmp_path, meta, {"ensemble": df}, mc_passes=8, n_members=3, features="kept-region")
    cal = json.loads((tmp_path / "model.json").read_text())["calibration"]["ensemble"]
    assert cal["features"] == KEPT_REGION_FEATURES and cal["feature_set"] == "kept-region"
    assert cal["n_seeded_cases"] == 20 and uses_kept_region(cal) and cal["pearson_r_cv"] > 0.95
    assert cal["coef"][0] > 0.8                            # kept_agreement carries the Dice
    box = {}
    fit_tables(tmp_path, box, {"ensemble": df}, mc_passes=8, n_members=3)
    assert box["calibration"]["ensemble"]["feature_set"] == "box" and not uses_kept_region(box["calibration"]["ensemble"])
    with pytest.raises(InputError, match="kept_agreement"):
        fit_tables(tmp_path, {}, {"ensemble": df.drop(columns=["f_kept_agreement"])}, mc_passes=8, n_members=3,
                   features="kept-region")
    with pytest.raises(InputError, match="unknown confidence feature set"):
        fit_tables(tmp_path, {}, {"ensemble": df}, mc_passes=8, n_members=3, features="kept")


def test_recalibration_keeps_the_models_feature_set_unless_told(tmp_path, monkeypatch):
    """``tools/recalibrate_seg.py``: a refit keeps the feature set and implant count of the model's calibration;
    ``--features`` changes the set; ``--implants`` without the implant background CT stops with the fix."""
    import importlib.util
    import json
    from pathlib import Path

    import pytest

    path = Path(__file__).resolve().parents[1] / "tools" / "recalibrate_seg.py"
    spec = importlib.util.spec_from_file_location("recalibrate_seg", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    kept = {"calibration": {"ensemble": {"fitted": True, "feature_set": "kept-region", "n_seeded_cases": 40}}}
    assert tool.current_settings(kept) == ("kept-region", 40)
    assert tool.current_settings({"calibration": {"ensemble": {"fitted": True}}}) == ("box", 0)
    (tmp_path / "model.json").write_text("{}")
    _kept_table().to_csv(tmp_path / "validation_ensemble.csv", index=False)
    meta = json.loads(json.dumps(kept))
    monkeypatch.setattr(tool, "load_model", lambda d: (None, [0, 1, 2], meta))
    assert tool.main(["--model", str(tmp_path), "--from-tables"]) == 0
    written = json.loads((tmp_path / "model.json").read_text())["calibration"]["ensemble"]
    assert written["feature_set"] == "kept-region" and written["features"][0] == "kept_agreement"
    assert "20 in seed mode" in written["how"]
    assert tool.main(["--model", str(tmp_path), "--from-tables", "--features", "box"]) == 0
    assert json.loads((tmp_path / "model.json").read_text())["calibration"]["ensemble"]["features"][0] == "agreement"
    assert (tmp_path / "model.before-recalibration.json").read_text() == "{}"
    import seg_select_validation

    from lungai.errors import InputError

    monkeypatch.setattr(seg_select_validation, "NSCLC", tmp_path / "nowhere")     # no ../shared: a clear stop
    monkeypatch.setattr(tool, "resolve_model_dir", lambda m: tmp_path)
    with pytest.raises(InputError, match="LUNG1-002"):
        tool.main(["--model", str(tmp_path), "--implants", "4"])


def test_the_automatic_region_benchmark_measures_how_much_of_a_tumour_it_covers():
    """benchmarks/seg_auto_region.py: a 20 mm ball whose centre lies on the lung's edge is half inside, wholly within
    10 mm, and half of its surface borders lung; each lung's hull fills its own concavity, not the gap between them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from seg_auto_region import region_shares

    z, y, x = np.mgrid[:40, :40, :40]
    lungs = x < 20
    ball = (x - 19.5) ** 2 + (y - 20) ** 2 + (z - 20) ** 2 <= 10 ** 2
    s = region_shares(ball, lungs, (1.0, 1.0, 1.0))
    assert abs(s["within_0_mm"] - 0.5) < 0.03 and s["within_10_mm"] == 1.0
    assert s["within_0_mm"] < s["within_5_mm"] < s["within_10_mm"]
    assert abs(s["surface_on_lung"] - 0.5) < 0.05
    from seg_auto_region import lung_hulls

    c = np.zeros((2, 30, 60), np.uint8)                 # a C-shaped right lung, a square left one
    c[:, 5:25, 5:10] = c[:, 5:10, 5:20] = c[:, 20:25, 5:20] = 1
    c[:, 5:25, 40:55] = 2
    hull = lung_hulls(c)
    assert hull[:, 15, 15].all() and not hull[:, 15, 30].any() and hull[c > 0].all()   # each lung's own hull


def test_the_kept_region_benchmark_scores_both_feature_sets_on_each_part():
    """benchmarks/seg_kept_region_validation.py: a Dice the kept region's agreement explains scores r near 1 with
    the kept region's features and lower with the box's, on the split, the implants and all; a table without
    implants is refused."""
    import sys
    from pathlib import Path

    import pytest

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from seg_kept_region_validation import compare

    df = _kept_table(80)
    r = compare(df, seeds=2)
    assert min(r["kept-region"].values()) > 0.95
    assert r["box"]["all"] < r["kept-region"]["all"] - 0.2
    with pytest.raises(SystemExit, match="--implants"):
        compare(df.assign(roi_mode="whole"))
    with pytest.raises(SystemExit, match="f_kept_agreement"):          # a table from before the kept features
        compare(df.drop(columns=["f_kept_agreement"]))


def _strict_json(text: str):
    """json.loads that refuses NaN / Infinity (as strict parsers do)."""
    import json

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _validation_table(n: int, seed: int = 5):
    import pandas as pd

    rng = np.random.default_rng(seed)
    agreement = rng.uniform(0.2, 1, n)
    dice = np.clip(agreement + rng.normal(0, 0.05, n), 0, 1)
    return pd.DataFrame({"case": [f"c{i}" for i in range(n)], "dice": dice, "volume_true_ml": 1.0,
                         "volume_pred_ml": 1.0, "false_volume_ml": 0.0, "hd95_mm": 1.0, "confidence": 0.0,
                         "needs_review": False, "review_reasons": "", "roi_mode": "whole",
                         "f_agreement": agreement, "f_mean_entropy": 0.5, "f_uncertain_ratio": 0.5,
                         "f_log_volume": 0.0, "f_flip_consistency": 0.9})


def test_model_json_is_strict_json_with_null_for_an_r_that_cannot_be_computed(tmp_path):
    """2 validation cases: no r can be computed; model.json holds null (not the bare NaN strict parsers reject),
    and what prints it says n/a."""
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.evaluate import summary_text
    from lungai.seg.model_io import write_json

    meta = {}
    fit_tables(tmp_path, meta, {"mc-dropout": _validation_table(2)}, mc_passes=2, n_members=1)
    doc = _strict_json((tmp_path / "model.json").read_text(encoding="utf-8"))
    assert doc["calibration"]["mc-dropout"]["pearson_r_cv"] is None
    assert doc["validation"]["mc-dropout"]["pearson_r_confidence_dice_cv"] is None
    assert "r(confidence, Dice) = n/a" in summary_text(doc["validation"]["mc-dropout"])
    write_json(tmp_path / "x.json", {"a": [np.float32("nan"), float("inf"), 1.5], "b": {"c": np.float64("-inf")}})
    assert _strict_json((tmp_path / "x.json").read_text()) == {"a": [None, None, 1.5], "b": {"c": None}}


def test_validation_tables_flag_every_review_reason_but_choose_the_threshold_on_confidence(tmp_path):
    """needs_review in validation_<method>.csv = any review reason (the low-confidence one recomputed with the new
    threshold, the others kept), as `lungai segment` flags; the threshold is still chosen on confidence < t."""
    import pandas as pd

    from lungai.seg.calibrate import fit_tables
    from lungai.seg.infer import LOW_CONFIDENCE

    plain = _validation_table(40)
    marked = plain.copy()
    cut = "tumour cut by the image edge"
    marked["review_reasons"] = [f"{LOW_CONFIDENCE}; {cut}" if i % 5 == 0 else "" for i in range(len(marked))]
    a, b = {}, {}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fit_tables(tmp_path / "a", a, {"ensemble": plain}, mc_passes=2, n_members=3)
    fit_tables(tmp_path / "b", b, {"ensemble": marked}, mc_passes=2, n_members=3)
    assert a["review"] == b["review"] and a["calibration"] == b["calibration"]
    thr = b["review"]["ensemble"]["threshold"]
    df = pd.read_csv(tmp_path / "b" / "validation_ensemble.csv", keep_default_na=False)
    low = df["confidence"] < thr
    has_cut = df["review_reasons"].str.contains(cut)
    assert has_cut.sum() == 8 and (has_cut & ~low).any()
    assert (df["needs_review"] == (low | has_cut)).all()
    assert (df["review_reasons"].str.contains(LOW_CONFIDENCE) == low).all()


def test_a_one_member_model_uses_mc_dropout_unless_the_ensemble_is_asked_for(tmp_path, capsys):
    """One member always agrees with itself: without --method the result uses MC dropout and says so; an explicit
    ensemble stops with the fix; an uncalibrated model does not claim a calibrated confidence."""
    import pytest
    import SimpleITK as sitk
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.cli import main
    from lungai.errors import InputError
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    for name, dropout in (("m1", 0.1), ("m1_nodrop", 0.0)):
        cfg = tiny_config(members=1, dropout=dropout)
        save_model(tmp_path / name, cfg, [build_network(cfg).state_dict()], {})
    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    model = load_model(tmp_path / "m1")
    res = segment_tumour(case.image, model, whole=True, mc_passes=2)
    assert res.info["method"] == "mc-dropout" and res.info["mc_passes"] == 2 and res.info["calibrated"] is False
    assert any("1 member" in n and "MC dropout" in n for n in res.info["notes"])
    with pytest.raises(InputError) as err:
        segment_tumour(case.image, model, whole=True, method="ensemble")
    assert "--method mc-dropout" in err.value.fix and "--members 2" in err.value.fix
    with pytest.raises(InputError, match="no dropout"):
        segment_tumour(case.image, load_model(tmp_path / "m1_nodrop"), whole=True)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m1"),
                 "--mc-passes", "2", "--whole"]) == 0
    printed = capsys.readouterr().out
    assert "MC dropout was used" in printed and "uncalibrated confidence" in printed
    info = _strict_json((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert info["method"] == "mc-dropout"
    assert main(["segment", str(ct), "-o", str(tmp_path / "out2"), "--model", str(tmp_path / "m1"),
                 "--method", "ensemble", "--whole"]) != 0
    assert "--method mc-dropout" in capsys.readouterr().err


def test_segment_maps_say_what_they_hold_and_a_flag_says_why(tmp_path, capsys):
    """QA: uncertainty.nii.gz had no description / units, and the summary line 'confidence 0.71 (review below 0.59:
    NEEDS REVIEW)' did not say why.  The maps carry a NIfTI description (predictive entropy / mutual information,
    bit); a flagged result's summary line names its review reasons."""
    import SimpleITK as sitk
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.cli import main
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m1", cfg, [build_network(cfg).state_dict()], {})
    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), "--model", str(tmp_path / "m1"), "--mc-passes", "2",
                 "--whole"]) == 0
    assert sitk.ReadImage(str(out / "uncertainty.nii.gz")).GetMetaData("descrip") == \
        "predictive entropy of the tumour probability, bit"
    assert sitk.ReadImage(str(out / "mutual_information.nii.gz")).GetMetaData("descrip").startswith(
        "mutual information")
    info = _strict_json((out / "result.json").read_text(encoding="utf-8"))
    summary = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tumour "))
    assert info["needs_review"] and info["review_reasons"]        # the tiny model's tumour touches the image edge
    assert f"NEEDS REVIEW - {'; '.join(info['review_reasons'])})" in summary, summary
    n = info["n_components"]        # QA pluralseg62: "in 1 component(s)"
    assert f" ml in {n} component{'' if n == 1 else 's'}; " in summary and "(s)" not in summary, summary


def test_the_default_mc_passes_are_those_every_shipped_calibration_was_fitted_with():
    """QA: the shipped models' MC-dropout confidence and review threshold (0.6261 for the ensemble model's member 0)
    were fitted with 8 passes while --mc-passes, the console API and the panel defaulted to 10."""
    import json

    from lungai.seg.config import MC_PASSES
    from lungai.seg.confidence import calibration_mc_passes
    from lungai.seg.resources import models_root, shipped_models

    fitted = {}
    for name in shipped_models():
        meta = json.loads((models_root() / name / "model.json").read_text(encoding="utf-8"))
        if (meta.get("calibration") or {}).get("mc-dropout"):
            fitted[name] = calibration_mc_passes(meta)
    assert fitted and set(fitted.values()) == {MC_PASSES}, fitted


def _mc_model_calibrated_at_3_passes(tmp_path, meta: dict) -> tuple:
    """(a tiny 1-member model with dropout, saved with ``meta``'s MC-dropout calibration, loaded; a tiny case)."""
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m1", cfg, [build_network(cfg).state_dict()], {"calibration": meta["calibration"],
                                                                          "review": meta["review"]})
    return load_model(tmp_path / "m1"), next(c for c in tiny_cases(4, 0) if c.case_id)


def test_mc_passes_other_than_the_calibrations_are_noted_and_recorded(tmp_path):
    """A run with other passes than the MC-dropout calibration's says so (and how to get a calibrated confidence) and
    result.json records the calibration's passes; the calibration records them (older models: from the validation
    description)."""
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.confidence import calibration_mc_passes
    from lungai.seg.infer import segment_tumour

    meta = {}
    fit_tables(tmp_path, meta, {"mc-dropout": _validation_table(40)}, mc_passes=3, n_members=1)
    assert meta["calibration"]["mc-dropout"]["mc_passes"] == 3 and calibration_mc_passes(meta) == 3
    old = {"calibration": {"mc-dropout": {"fitted": True}},
           "validation": {"mc-dropout": {"description": "MC dropout (member 0), 8 passes"}}}
    assert calibration_mc_passes(old) == 8 and calibration_mc_passes({}) is None

    model, case = _mc_model_calibrated_at_3_passes(tmp_path, meta)
    same = segment_tumour(case.image, model, whole=True, mc_passes=3).info
    other = segment_tumour(case.image, model, whole=True, mc_passes=2).info
    assert same["calibration_mc_passes"] == other["calibration_mc_passes"] == 3
    assert not any("fitted with 3 passes" in n for n in same["notes"])
    assert any("fitted with 3 passes and this run used 2" in n and "--mc-passes 3" in n for n in other["notes"])


def test_no_mc_passes_given_runs_the_passes_of_the_models_calibration(tmp_path):
    """QA D1: the default passes were a constant (10, then 8) whatever the model's calibration was fitted with: with
    none given, segment_tumour, `lungai segment` / `eval-seg` and the panel run the passes of the model's own MC-dropout
    calibration (calibration_mc_passes), MC_PASSES for a model without one; passes the user gives are kept, noted."""
    from lungai.cli import build_parser
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.config import MC_PASSES
    from lungai.seg.confidence import model_mc_passes
    from lungai.seg.infer import segment_tumour

    meta = {}
    fit_tables(tmp_path, meta, {"mc-dropout": _validation_table(40)}, mc_passes=3, n_members=1)
    assert model_mc_passes(meta, None) == 3 and model_mc_passes(meta, 5) == 5
    assert model_mc_passes({}, None) == MC_PASSES            # no calibration: the fallback
    model, case = _mc_model_calibrated_at_3_passes(tmp_path, meta)
    auto = segment_tumour(case.image, model, whole=True).info
    assert auto["mc_passes"] == auto["calibration_mc_passes"] == 3
    assert not any("passes" in n for n in auto["notes"])
    given = segment_tumour(case.image, model, whole=True, mc_passes=2).info
    assert given["mc_passes"] == 2 and any("used 2" in n for n in given["notes"])
    for command in ("segment", "eval-seg"):     # not given: the model decides (train-seg calibrates with MC_PASSES)
        args = [command, "ct.nii.gz", "-o", "out"] if command == "segment" else \
            [command, "--model", "m", "--images", "i", "--masks", "k", "-o", "o.csv"]
        assert build_parser().parse_args(args).mc_passes is None


def test_every_review_reason_says_what_to_do():
    """QA D2: only the default model's low confidence said what to do: every review reason has an action (check the
    outline, an ROI box, another model ...); an empty result says to confirm there is no tumour at the seed or move
    it."""
    from lungai.seg import preprocess as pp
    from lungai.seg.choice import DISAGREE
    from lungai.seg.infer import (BEYOND_ROI_REASON, LOW_CONFIDENCE, RAN_ON, REVIEW_ACTIONS, SEED_AWAY,
                                  review_actions, review_reasons)

    every = review_reasons(0.1, 0.5, uncalibrated=True, cut=True, incomplete=True, ran_on=True, several=True,
                           seed_away=True,
                           aerated=True, thin_slab=True, roi_order=True, voxel_index=True, dense=True,
                           far=True, loose=True, beyond=True) + [DISAGREE]
    assert {LOW_CONFIDENCE, RAN_ON, SEED_AWAY, pp.AERATED_REASON, pp.THIN_SLAB_REASON, pp.ROI_ORDER_REASON,
            pp.VOXEL_INDEX_REASON, pp.DENSE_REASON, pp.FAR_REASON, pp.LOOSE_ROI_REASON, BEYOND_ROI_REASON,
            DISAGREE} <= set(every)
    assert set(every) == set(REVIEW_ACTIONS), set(every) ^ set(REVIEW_ACTIONS)
    info = {"review_reasons": every, "roi_mode": "seed", "n_components": 1, "tumor_volume_ml": 3.0}
    actions = review_actions(info)
    assert len(actions) == len(every) and all(a and a[0] != " " for a in actions)
    # a seed / box off the chest or in aerated lung: move it; its numbers read as bounds / voxel indices: run again
    # with the note's
    placed = [r for r in every if r not in (pp.DENSE_REASON, pp.FAR_REASON, pp.AERATED_REASON)]
    low = review_actions(dict(info, review_reasons=placed))[placed.index(LOW_CONFIDENCE)]
    assert "--model" not in low and "the numbers the note gives" in low
    placed = [r for r in placed if r not in (pp.ROI_ORDER_REASON, pp.VOXEL_INDEX_REASON)]
    low = review_actions(dict(info, review_reasons=placed))[placed.index(LOW_CONFIDENCE)]
    assert "check" in low and ("ROI" in low or "--roi" in low) and "--model" in low
    assert "--model" not in actions[every.index(LOW_CONFIDENCE)] and "move" in actions[every.index(LOW_CONFIDENCE)]
    empty = review_actions({"review_reasons": [LOW_CONFIDENCE], "roi_mode": "seed", "n_components": 0,
                            "tumor_volume_ml": 0.0})
    assert len(empty) == 1 and "no tumour at the seed" in empty[0] and "move the seed" in empty[0]
    # every mode's empty result says where nothing was found: a crop segmented whole is not automatic mode
    by_mode = {m: review_actions({"review_reasons": [LOW_CONFIDENCE], "roi_mode": m, "n_components": 0})[0]
               for m in ("seed", "roi", "lungs", "whole")}
    assert len(set(by_mode.values())) == 4 and "in the image" in by_mode["whole"] and "--seed-point" in by_mode["whole"]
    assert review_actions({"review_reasons": [], "roi_mode": "seed"}) == []



def test_every_review_action_fits_the_mode_the_user_ran():
    """QA on lung2 with an ROI box: the user who had drawn the box was told to "draw an ROI box round the tumour" (low
    confidence) and to "place the seed at the tumour's centre" (the tumour may be larger than the box).  Each reason
    that can arise in a mode has an action of that mode: ROI mode speaks of the user's box, seed mode of the seed,
    automatic mode (and a crop segmented whole) of a seed point or ROI box to give - never of "the seed"."""
    from lungai.seg import preprocess as pp
    from lungai.seg.choice import DISAGREE
    from lungai.seg.infer import (BEYOND_ROI_REASON, INCOMPLETE_REASON, LOW_CONFIDENCE, MODE_ACTIONS, RAN_ON,
                                  REVIEW_ACTIONS, SEED_AWAY, SEVERAL_REASON, ran_on_action, review_actions)

    assert set(MODE_ACTIONS) == {"roi", "lungs", "whole"} and all(set(m) <= set(REVIEW_ACTIONS)
                                                                   for m in MODE_ACTIONS.values())
    roi_only = {pp.ROI_ORDER_REASON, pp.LOOSE_ROI_REASON, BEYOND_ROI_REASON}
    occurs = {"roi": set(REVIEW_ACTIONS) - {SEED_AWAY, SEVERAL_REASON},
              "seed": set(REVIEW_ACTIONS) - roi_only - {SEVERAL_REASON},
              "lungs": {LOW_CONFIDENCE, INCOMPLETE_REASON, SEVERAL_REASON, DISAGREE, pp.THIN_SLAB_REASON},
              "whole": {LOW_CONFIDENCE, INCOMPLETE_REASON, DISAGREE, pp.THIN_SLAB_REASON}}
    wrong = {"roi": ("draw an ROI box", "the seed", "a seed point"), "seed": ("your ROI box", "the ROI box"),
             "lungs": ("the seed", "your ROI box", "the ROI box", "the box round"),
             "whole": ("the seed", "your ROI box", "the ROI box", "the box round")}
    problems = []
    for mode, reasons in occurs.items():
        for reason in sorted(reasons):
            for extra in ([], [pp.FAR_REASON], [pp.VOXEL_INDEX_REASON]) if reason == LOW_CONFIDENCE else ([],):
                if extra and mode not in ("roi", "seed"):
                    continue
                info = {"review_reasons": [reason] + extra, "roi_mode": mode, "n_components": 1}
                for action in review_actions(info):
                    problems += [f"{mode}: {reason} + {extra}: {w!r} in {action!r}" for w in wrong[mode] if w in action]
    assert problems == [], "\n".join(problems)
    roi = {"roi_mode": "roi", "n_components": 1}
    low, incomplete, ran_on = review_actions(dict(roi, review_reasons=[LOW_CONFIDENCE, INCOMPLETE_REASON, RAN_ON]))
    assert "redraw your ROI box round the whole tumour" in low and "--model" in low
    assert "enlarge your ROI box" in incomplete and "redraw your ROI box tight" in ran_on
    assert "enlarge your ROI box" in ran_on_action(["x-"], "roi") and "draw an ROI box" in ran_on_action(["x-"])
    auto = review_actions({"roi_mode": "lungs", "n_components": 1, "review_reasons": [LOW_CONFIDENCE]})[0]
    assert "--seed-point" in auto and "--roi" in auto and "--model" in auto
    seed = review_actions({"roi_mode": "seed", "n_components": 1, "review_reasons": [INCOMPLETE_REASON]})[0]
    assert "move the seed to the tumour's centre" in seed

def test_the_low_confidence_of_numbers_flagged_names_only_what_applies_to_the_mode():
    """QA segprog64 on LUNG1-003 with its origin at (0, 0, 0) and its GTV's voxel index as the seed,
    `--seed-point=305,253,60`: the low confidence's action said "first check the seed's numbers (see the note): if they
    are voxel indices or Slicer's bounds order, not LPS mm (an ROI: two corners), run again ..." - a seed has no bounds
    order and no corners.  It names what was flagged (voxel indices; an ROI's bounds order) and what the mode's option
    takes, and nothing of the other mode."""
    from lungai.seg import preprocess as pp
    from lungai.seg.infer import LOW_CONFIDENCE, review_actions

    def low(mode, *flagged):
        return review_actions({"roi_mode": mode, "n_components": 1,
                               "review_reasons": [LOW_CONFIDENCE, *flagged]})[0]

    seed = low("seed", pp.VOXEL_INDEX_REASON)
    assert "voxel indices" in seed and "--seed-point" in seed and "the numbers the note gives" in seed, seed
    assert not any(w in seed for w in ("bounds", "corner", "ROI", "--roi")), seed
    order = low("roi", pp.ROI_ORDER_REASON)
    assert "bounds" in order and "two corners" in order and "--roi" in order, order
    assert "voxel indices" not in order and "--seed-point" not in order, order
    voxels = low("roi", pp.VOXEL_INDEX_REASON)
    assert "voxel indices" in voxels and "bounds" not in voxels and "two corners" in voxels, voxels
    both = low("roi", pp.ROI_ORDER_REASON, pp.VOXEL_INDEX_REASON)
    assert "voxel indices" in both and "bounds" in both, both


def test_test_report_marks_the_real_lesions_by_the_models_training_patients():
    """QA D2: seg_test_report.py hard-coded lung1 / lung2 as never trained on; it now asks the model's recorded
    training patients (eval-seg's check, lungai.seg.evaluate.seen_patients), and says when it cannot be checked."""
    import sys
    from pathlib import Path

    import pytest

    from lungai.model_files import training_patients
    from lungai.seg.dataset import Case
    from lungai.seg.evaluate import seen_patients

    cases = [Case("lung1", "lung1"), Case("P07_0", "P07"), Case("LUNG1-002_GTV-1", "LUNG1-002")]
    meta = {"training_patients": training_patients([("lung1", "lung1_image")]),
            "validation_patients": training_patients([("P07", "P07_0")])}
    assert seen_patients(meta, cases) == (["training", "validation", ""], True)
    assert seen_patients({}, cases) == (["", "", ""], False)
    bg = {"training": {"implant_background_patients": ["LUNG1-002"]}}
    assert seen_patients(bg, cases) == (["", "", "training"], False)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import seg_test_report

    if not (seg_test_report.REAL / "lung1_image.nrrd").exists():
        pytest.skip("shared data (pyradiomics_lung) not here")
    real, checked = seg_test_report.real_cases(meta)
    assert checked and {c.case_id: c.meta["seen_in_training"] for c in real}["lung1"] is True
    assert {c.case_id: c.meta["seen_in_training"] for c in real}["lung2"] is False
    real, checked = seg_test_report.real_cases({})
    assert not checked and not real[0].meta["seen_checked"]


def test_an_unfitted_calibration_has_no_passes_and_eval_seg_rows_say_the_passes(tmp_path):
    """Review: fit_tables records the passes even when too few validation cases leave the confidence uncalibrated;
    calibration_mc_passes then claimed "fitted with 5 passes" next to calibrated false.  And eval-seg's rows now say
    the passes that ran (they depend on the model)."""
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.confidence import calibration_mc_passes

    meta = {}
    fit_tables(tmp_path, meta, {"mc-dropout": _validation_table(2)}, mc_passes=5, n_members=1)
    assert meta["calibration"]["mc-dropout"]["fitted"] is False
    assert calibration_mc_passes(meta) is None
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.seg.evaluate import evaluate_case
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m1", cfg, [build_network(cfg).state_dict()], {})
    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    row = evaluate_case(load_model(tmp_path / "m1"), case, method="mc-dropout", mc_passes=2)
    assert row["mc_passes"] == 2 and row["calibration_mc_passes"] is None


def test_an_uncalibrated_model_flags_its_results_for_review(tmp_path, capsys):
    """Left open last stop: a model trained with fewer than MIN_CALIBRATION_CASES validation cases with a tumour has
    no calibrated confidence (the members' agreement stands in), yet its results were cleared whenever that
    agreement passed the default threshold.  Every such result is now flagged for that reason alone, with what to do;
    the validation tables of a calibration that fits say it no longer (their cases ran before the fit), and a
    calibration that does not fit keeps it."""
    import SimpleITK as sitk
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.cli import main
    from lungai.seg.calibrate import fit_tables
    from lungai.seg.confidence import MIN_CALIBRATION_CASES
    from lungai.seg.infer import LOW_CONFIDENCE, REVIEW_ACTIONS, UNCALIBRATED_REASON, segment_tumour
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m1", cfg, [build_network(cfg).state_dict()], {"review": {"mc-dropout": {"threshold": 0.0}}})
    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    res = segment_tumour(case.image, load_model(tmp_path / "m1"), whole=True, mc_passes=2)
    info = res.info
    assert info["calibrated"] is False and LOW_CONFIDENCE not in info["review_reasons"]     # threshold 0: not low
    assert UNCALIBRATED_REASON in info["review_reasons"] and info["needs_review"] is True
    action = info["review_actions"][info["review_reasons"].index(UNCALIBRATED_REASON)]
    assert action == REVIEW_ACTIONS[UNCALIBRATED_REASON] and f"at least {MIN_CALIBRATION_CASES} validation" in action
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m1"),
                 "--mc-passes", "2", "--whole"]) == 0
    assert UNCALIBRATED_REASON in capsys.readouterr().out
    # calibration: the cases ran on the uncalibrated model and recorded the reason
    for n, fitted in ((MIN_CALIBRATION_CASES, True), (MIN_CALIBRATION_CASES - 1, False)):
        table = _validation_table(n)
        table["review_reasons"] = f"{UNCALIBRATED_REASON}; tumour cut by the image edge"
        meta, folder = {}, tmp_path / f"fit{n}"
        folder.mkdir()
        fit_tables(folder, meta, {"mc-dropout": table}, mc_passes=2, n_members=1)
        assert meta["calibration"]["mc-dropout"]["fitted"] is fitted
        said = table["review_reasons"].str.contains(UNCALIBRATED_REASON)
        assert bool(said.any()) is not fitted and bool(said.all()) is not fitted
        assert table["review_reasons"].str.contains("tumour cut by the image edge").all() and table["needs_review"].all()


def test_result_json_tells_a_model_retrained_in_the_same_folder_apart(tmp_path):
    """QA: result.json named the model by its folder only: a model retrained or recalibrated there (or another model
    copied under that name) gave results that could not be told apart.  It records the sha256 of model.json and of
    each member (lungai.seg.model_meta.model_identity); a model choice, those of each model it names."""
    import hashlib
    import json

    import SimpleITK as sitk
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.cli import main
    from lungai.seg.model_io import save_model
    from lungai.seg.model_meta import model_identity
    from lungai.seg.networks import build_network
    from lungai.seg.resources import resolve_model_dir

    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))
    cfg = tiny_config(members=1, dropout=0.1)
    ids = []
    for run, weights_seed in enumerate((0, 1)):          # the same folder, trained again with other weights
        torch.manual_seed(weights_seed)
        save_model(tmp_path / "m1", cfg, [build_network(cfg).state_dict()], {})
        assert main(["segment", str(ct), "-o", str(tmp_path / f"out{run}"), "--model", str(tmp_path / "m1"),
                     "--mc-passes", "2", "--whole"]) == 0
        info = json.loads((tmp_path / f"out{run}" / "result.json").read_text(encoding="utf-8"))
        member = json.loads((tmp_path / "m1" / "model.json").read_text(encoding="utf-8"))["member_files"][0]
        assert info["model_identity"]["member_sha256"] == {
            member: hashlib.sha256((tmp_path / "m1" / member).read_bytes()).hexdigest()}
        ids.append(info["model_identity"])
    assert ids[0]["folder"] == ids[1]["folder"] and ids[0]["member_sha256"] != ids[1]["member_sha256"]
    # a model choice: each model it names, by its files
    routed = model_identity(resolve_model_dir("lungai-seg-routed"))
    assert set(routed["models"]) == set(json.loads((resolve_model_dir("lungai-seg-routed") / "model.json")
                                                   .read_text(encoding="utf-8"))["models"])
    for name, sub in routed["models"].items():
        assert sub["member_sha256"] and "models" not in sub


def test_eval_seg_notes_cases_matching_a_training_patient_only_ignoring_letter_case(capsys):
    """QA: eval-seg on `lidc-idri-0001_R_1` (a Windows / macOS copy, lower-cased) of a model trained on
    LIDC-IDRI-0001 scored it as unseen, silently: model.json records the loose hashes (case folded, leading zeros
    dropped: lungai.model_files.loose_id) but eval-seg compared the exact ones only.  Now such cases are named in a
    note (as `stage` / `rp validate` do: evaluated, checked by the user); exact matches are still left out."""
    from lungai.cli.seg import _seen_cases
    from lungai.model_files import training_patients
    from lungai.seg.dataset import Case
    from lungai.seg.evaluate import seen_patients

    meta = {"training_patients": training_patients([("LIDC-IDRI-0001", "LIDC-IDRI-0001_R_1")]),
            "validation_patients": training_patients([("P07", "P07_0")]),
            "training": {"implant_background_patients": ["LUNG1-002"]}}
    cases = [Case("lidc-idri-0001_R_2", "lidc-idri-0001"), Case("p7_3", "p7"), Case("LIDC-IDRI-0001_R_3",
             "LIDC-IDRI-0001"), Case("lung1-002_a", "lung1-002"), Case("Q09_0", "Q09")]
    kept = _seen_cases(meta, cases, include=False)
    said = capsys.readouterr().out
    assert [c.case_id for c in kept] == ["lidc-idri-0001_R_2", "p7_3", "lung1-002_a", "Q09_0"]
    assert ("3 of the 5 cases match a patient the model was trained or validated on only ignoring letter case / "
            "leading zeros (lidc-idri-0001_R_2 (training), p7_3 (validation), lung1-002_a (training))") in said, said
    assert seen_patients(meta, cases) == (["", "", "training", "", ""], True)
    assert seen_patients(meta, cases, loose=True) == (["training", "validation", "", "training", ""], True)
    _seen_cases(meta, [Case("Q09_0", "Q09")], include=False)
    assert "ignoring letter case" not in capsys.readouterr().out


def test_eval_seg_counts_agree_with_one_case_and_with_several(capsys):
    """QA wording61: eval-seg said "1 of the 3 cases are of patients the model was trained or validated on", "all 1
    cases are of patients ..." and "1 of the 2 cases match a patient": the verb and noun now agree with the count
    (lungai.errors.counted_of / agree), for 1 and for several."""
    import pytest

    from lungai.cli.seg import _seen_cases
    from lungai.errors import InputError, agree, counted_of
    from lungai.model_files import training_patients
    from lungai.seg.dataset import Case

    assert [counted_of(1, 3, "case"), counted_of(2, 3, "case"), counted_of(3, 3, "case"), counted_of(1, 1, "case")] \
        == ["1 of the 3 cases", "2 of the 3 cases", "all 3 cases", "the 1 case"]
    assert (agree(1, "is", "are"), agree(0, "is", "are"), agree(2, "is", "are")) == ("is", "are", "are")
    meta = {"training_patients": training_patients([("P01", "P01_0"), ("P02", "P02_0")])}
    one = [Case("P01_1", "P01"), Case("Q01_0", "Q01"), Case("Q02_0", "Q02")]
    assert [c.case_id for c in _seen_cases(meta, one, include=False)] == ["Q01_0", "Q02_0"]
    said = capsys.readouterr().out
    assert ("note: 1 of the 3 cases is of a patient the model was trained or validated on (P01_1 (training)): left "
            "out (its results would be in-sample); 2 cases are evaluated") in said, said
    two = [Case("P01_1", "P01"), Case("P02_1", "P02"), Case("Q01_0", "Q01")]
    assert [c.case_id for c in _seen_cases(meta, two, include=False)] == ["Q01_0"]
    said = capsys.readouterr().out
    assert ("note: 2 of the 3 cases are of patients the model was trained or validated on (P01_1 (training), P02_1 "
            "(training)): left out (their results would be in-sample); 1 case is evaluated") in said, said
    with pytest.raises(InputError) as exc:
        _seen_cases(meta, [Case("P01_1", "P01")], include=False)
    assert exc.value.problem.startswith("the 1 case is of a patient the model was trained or validated on (P01_1 "
                                        "(training)): its results would be in-sample"), exc.value.problem
    with pytest.raises(InputError) as exc:
        _seen_cases(meta, two[:2], include=False)
    assert exc.value.problem.startswith("all 2 cases are of patients the model was trained or validated on"), \
        exc.value.problem
    _seen_cases(meta, [Case("p1_1", "p1"), Case("Q01_0", "Q01")], include=False)
    assert "note: 1 of the 2 cases matches a patient the model was trained or validated on only ignoring" in \
        capsys.readouterr().out


def test_eval_seg_notes_cases_named_in_another_scheme_after_a_training_patient(capsys, tmp_path):
    """QA: eval-seg on `LIDC-IDRI-0001-R-1.nii.gz` (a crop of the training patient LIDC-IDRI-0001, named with '-'
    instead of '_') of a model trained on LIDC-IDRI-0001_R_1 scored it as an unseen patient, silently: its patient
    is the whole name (no '_').  Such a case - a name without '_' beginning with a trained / validated patient and a
    separator (lungai.seg.dataset.separator_prefixes, train-seg's rule) - is named in a note now; evaluated (the
    match is a guess), unless its patients come from a --patients CSV."""
    from lungai.cli.seg import _seen_cases
    from lungai.model_files import training_patients
    import SimpleITK as sitk

    from lungai.seg.dataset import pair_files

    meta = {"training_patients": training_patients([("LIDC-IDRI-0001", "LIDC-IDRI-0001_R_1")]),
            "validation_patients": training_patients([("P07", "P07_0")])}
    images, masks = tmp_path / "images", tmp_path / "masks"
    for d in (images, masks):
        d.mkdir()
        for name in ("LIDC-IDRI-0001-R-1", "p7.3", "LIDC-IDRI-0010-R-1", "Q09_0"):
            sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(d / f"{name}.nii.gz"))
    cases = pair_files(images, masks)
    kept = _seen_cases(meta, cases, include=False)
    said = capsys.readouterr().out
    assert len(kept) == 4
    assert ("2 of the 4 cases have a name without '_' that begins with a patient the model was trained or validated "
            "on and a separator (LIDC-IDRI-0001-R-1 (training: LIDC-IDRI-0001), p7.3 (validation: p7)): evaluated as "
            "unseen") in said, said
    assert "LIDC-IDRI-0010-R-1" not in said and "Q09_0" not in said
    csv = tmp_path / "p.csv"
    csv.write_text("case,patient\n" + "".join(f"{c.case_id},{c.case_id}\n" for c in cases), encoding="utf-8")
    _seen_cases(meta, pair_files(images, masks, patients_csv=csv), include=False)
    assert "without '_'" not in capsys.readouterr().out


@pytest.mark.parametrize("n", [1, 2])
def test_a_validation_table_without_features_counts_them_in_the_singular_and_the_plural(tmp_path, n):
    """QA pluralseg62: a recalibration from validation tables lacking a feature said "has no feature(s) ...": the
    number of the missing features' own count now (lungai.errors.agree)."""
    import pandas as pd

    from lungai.seg.calibrate import FEATURE_SETS, fit_tables

    names = FEATURE_SETS["box"]
    df = pd.DataFrame({"roi_mode": ["lungs", "box"], "dice": [0.8, 0.6],
                       **{f"f_{f}": [0.5, 0.4] for f in names[n:]}})
    with pytest.raises(InputError) as e:
        fit_tables(tmp_path, {}, {"mc-dropout": df}, mc_passes=2, n_members=1)
    word = "feature" if n == 1 else "features"
    assert e.value.problem == f"the mc-dropout validation table has no {word} {', '.join(names[:n])}"


def test_a_misplaced_seed_or_boxs_growth_actions_say_to_move_it_first():
    """QA segnotes64 on LUNG1-003, an ROI box in the vertebral body: "move your ROI box onto the tumour's soft tissue"
    and, for the bone reaching the box's z- face, "enlarge your ROI box round the whole tumour" - two fixes that
    contradict each other.  A seed / box flagged in bone, far from the lungs or in aerated lung whose mask is larger
    than the box or runs on (its faces cut flat too) is told to move it first and that a larger box round what it
    found would not help; where it was flagged is named.  Without the flag the actions are as before."""
    from lungai.seg import preprocess as pp
    from lungai.seg.infer import (INCOMPLETE_REASON, LOW_CONFIDENCE, MODE_ACTIONS, RAN_ON, REVIEW_ACTIONS,
                                  ran_on_action, reason_key, review_actions, review_reasons)

    cut = [{"pass": 1, "kept": True, "mask_touches": ["z-"], "box_at_image_edge": []}]
    where = {pp.DENSE_REASON: "it lies in bone, a calcification or contrast",
             pp.FAR_REASON: "it lies far from the lungs", pp.AERATED_REASON: "it lies in aerated lung"}
    for mode, marked in (("roi", "your ROI box"), ("seed", "the seed")):
        for flag, grow in [(f, g) for f in where for g in ("incomplete", "ran_on")]:
            reasons = review_reasons(0.1, 0.5, mode=mode, **{grow: True}, dense=flag == pp.DENSE_REASON,
                                     far=flag == pp.FAR_REASON, aerated=flag == pp.AERATED_REASON)
            for passes in ([], cut):
                info = {"review_reasons": reasons, "roi_mode": mode, "n_components": 1, "roi_passes": passes}
                actions = dict(zip(map(reason_key, reasons), review_actions(info)))    # by the constants
                said = actions[INCOMPLETE_REASON if grow == "incomplete" else RAN_ON]
                assert said.startswith(f"first move {marked} onto the tumour and run again ({where[flag]})"), said
                assert "a larger box round it would not help" in said
                # no action says to grow a box round what was found
                for reason, action in actions.items():
                    assert not any(w in action for w in ("enlarge", "round the whole tumour", "tight round")), action
        # both flags: both named; unflagged: the actions as before
        both = review_reasons(0.1, 0.5, mode=mode, incomplete=True, dense=True, far=True)
        low, grown = review_actions({"review_reasons": both, "roi_mode": mode, "n_components": 1})[:2]
        assert f"({where[pp.DENSE_REASON]} and far from the lungs)" in low and \
            f"({where[pp.DENSE_REASON]} and far from the lungs)" in grown, (low, grown)
        plain = {"review_reasons": [LOW_CONFIDENCE, INCOMPLETE_REASON, RAN_ON], "roi_mode": mode, "n_components": 1}
        assert review_actions(plain)[1:] == [MODE_ACTIONS.get(mode, {}).get(r, REVIEW_ACTIONS[r])
                                             for r in (INCOMPLETE_REASON, RAN_ON)]
        assert review_actions(dict(plain, roi_passes=cut))[2] == ran_on_action(["z-"], mode)


def test_a_seed_or_box_in_aerated_lung_with_low_confidence_is_told_to_move_it_not_to_try_another_model():
    """QA segaerated64: a seed / ROI box flagged in aerated lung with low confidence was told "redraw your ROI box round
    the whole tumour ... or try another model" (seed: "move the seed to the tumour's centre ... or try another model")
    and, of the default model, the note that the DynUNet segments large tumours better - though what it segmented is
    most likely the lung beside the tumour (lung2, a seed 10 mm off its GTV at -860 HU).  As a seed / box in bone or
    far from the lungs: move it onto the tumour first, naming where it lies, no other model; the action of the aerated
    reason itself allows for a ground-glass nodule (no "solid tumour" only)."""
    from lungai.seg import preprocess as pp
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE, review_actions, review_reasons
    from lungai.seg.resources import DEFAULT_MODEL_NAME, models_root

    for mode, marked in (("roi", "your ROI box"), ("seed", "the seed")):
        reasons = review_reasons(0.1, 0.5, aerated=True, mode=mode)
        assert reasons == [LOW_CONFIDENCE, pp.reason_in_mode(pp.AERATED_REASON, mode)]
        info = {"review_reasons": reasons, "roi_mode": mode, "n_components": 1, "tumour_volume_ml": 2.0}
        low, aerated = review_actions(info)
        assert f"first move {marked} onto the tumour (it lies in aerated lung) and run again" in low, low
        assert not any(w in low for w in ("--model", "another model", "round the whole tumour", "centre")), low
        assert "ground-glass" in aerated and "--model" not in aerated, aerated
        # the default model alone: no note of the DynUNet for a seed / box in aerated lung
        assert model_hint(models_root() / DEFAULT_MODEL_NAME, info) is None
        # without the flag the low confidence and the note are as before: another model named
        plain = dict(info, review_reasons=[LOW_CONFIDENCE])
        assert "--model" in review_actions(plain)[0]
        assert "DynUNet" in model_hint(models_root() / DEFAULT_MODEL_NAME, plain)


def test_the_review_reasons_and_the_growth_notes_name_the_seed_or_the_box():
    """QA segnotes64: an ROI box was told "the seed point / ROI lies in bone ..." and the growth's note "the first that
    found a region, the one closest to the seed / ROI" - though the actions already spoke of "your ROI box" only.  A
    result's reasons of where the seed / box lies (and of its numbers) name the one given, the notes of its growth
    alike; each reason reads back as its constant (preprocess.reason_key: the actions, model_hint)."""
    from lungai.seg import infer
    from lungai.seg import preprocess as pp

    flags = dict(aerated=True, voxel_index=True, dense=True, far=True)
    given = {"seed": ("the seed point", "ROI"), "roi": ("the ROI box", "seed")}
    for mode, (named, other) in given.items():
        reasons = infer.review_reasons(0.9, 0.5, mode=mode, **flags)
        assert len(reasons) == 4 and all(named in r and other not in r for r in reasons), reasons
        assert [pp.reason_key(r) for r in reasons] == [pp.AERATED_REASON, pp.VOXEL_INDEX_REASON, pp.DENSE_REASON,
                                                       pp.FAR_REASON]
        assert infer.review_actions({"review_reasons": reasons, "roi_mode": mode}) == \
            infer.review_actions({"review_reasons": [pp.reason_key(r) for r in reasons], "roi_mode": mode})
    assert "the numbers of the ROI box may be voxel indices" in infer.review_reasons(0.9, 0.5, mode="roi",
                                                                                     voxel_index=True)[0]
    # reasons of no seed / box, and a mode without one: as they are
    assert infer.review_reasons(0.1, 0.5, mode="roi", incomplete=True) == [infer.LOW_CONFIDENCE,
                                                                          infer.INCOMPLETE_REASON]
    assert pp.reason_in_mode(pp.DENSE_REASON, "lungs") == pp.DENSE_REASON == pp.reason_key(pp.DENSE_REASON)
    # the growth's notes: the pass kept closest to the seed / to your ROI box; the region found at the seed / in it
    passes = [{"pass": 1, "tumour_ml": 7.7, "touches": ["z-"], "holds_tumour": False, "confidence": 0.4,
               "roi_size_mm": [60, 60, 60], "kept": True},
              {"pass": 2, "tumour_ml": 98.2, "touches": ["z-"], "holds_tumour": False, "confidence": 0.6,
               "roi_size_mm": [90, 90, 90]}]
    for mode, closest, found in (("seed", "the one closest to the seed)", "no box held the region found at the seed:"),
                                 ("roi", "the one closest to your ROI box)", "no box held the region found in your "
                                                                              "ROI box:")):
        stop = infer.kept_stop_reason(passes, 0, "the box reached the image edge", set(), mode)
        note = infer.ran_on_note(passes, mode)
        assert closest in stop and "seed / ROI" not in stop, stop
        assert note.startswith(found) and "seed / in the box" not in note, note
    # only seed and ROI mode grow a box: the growth's words need the mode - no "the seed / ROI" fallback naming neither
    # (QA segmsg65)
    assert not hasattr(infer, "GROWN_FROM_EITHER") and set(infer.GROWN_FROM) == {"seed", "roi"}
    for call in (lambda: infer.ran_on_note(passes), lambda: infer.kept_stop_reason(passes, 0, "x", set())):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("mode", ["seed", "roi", "lungs", "whole"])
def test_a_dynunet_results_low_confidence_does_not_advise_the_dynunet(mode):
    """QA seg67 on LUNG1-003 with --model lungai-seg-dynunet (a seed 12 mm off GTV-1's centre: confidence 0.640, below
    0.644; gtv-2's centre: 0.56): the low confidence's "to do" said "... or try another model (--model, e.g. the
    DynUNet for a large tumour; panel: Model)" - the model that had just run.  A DynUNet's result (result.json
    "architecture") is advised the other shipped models instead; a U-Net's keeps the DynUNet advice."""
    from lungai.seg.infer import LOW_CONFIDENCE, review_actions
    from lungai.seg.resources import DEFAULT_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME

    info = {"review_reasons": [LOW_CONFIDENCE], "roi_mode": mode, "n_components": 1}
    dyn = review_actions(dict(info, architecture="dynunet"))[0]
    assert "try another model" in dyn and "DynUNet for a large tumour" not in dyn, dyn
    assert f"--model, e.g. the default {DEFAULT_MODEL_NAME} or {LARGE_TUMOUR_MODEL_NAME}" in dyn, dyn
    unet = review_actions(dict(info, architecture="unet"))[0]
    assert "e.g. the DynUNet for a large tumour" in unet, unet
    # apart from the model advised, the action is the mode's own
    assert dyn.split("try another model")[0] == unet.split("try another model")[0]
