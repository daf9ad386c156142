"""A model choice (lungai/seg/choice.py): every named model segments the case, the most confident result is
kept, result.json says which and why, a disagreement between the models is flagged."""

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.seg.choice import ROUTE_RULE, ModelChoice, model_meta, segment_with_choice
from lungai.seg.infer import SegResult, segment_tumour
from lungai.seg.model_io import load_model
from lungai.seg.resources import (CHOICE_MODEL_NAME, DEFAULT_MODEL_NAME, DYNUNET_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME,
                                  ROUTED_MODEL_NAME, default_model_dir, models_root, resolve_model_dir)

CHOICE = CHOICE_MODEL_NAME


def _result(conf: float, box) -> SegResult:
    arr = np.zeros((20, 20, 20), np.uint8)
    arr[box] = 1
    img = sitk.GetImageFromArray(arr)
    return SegResult(img, img, img, None, {"confidence": conf, "needs_review": conf < 0.5, "tumor_volume_ml": float(arr.sum()),
                                           "review_threshold": 0.5, "method": "ensemble", "notes": [],
                                           "review_reasons": ["confidence below the review threshold"] if conf < 0.5 else []})


def _fake(results: dict):
    def segment(ct, model, **kwargs):
        return results[model]
    return segment


def test_the_most_confident_result_is_kept_and_recorded():
    a, b = _result(0.4, np.s_[5:10, 5:10, 5:10]), _result(0.7, np.s_[5:12, 5:12, 5:12])
    choice = ModelChoice(["small", "large"], ["A", "B"], {"min_model_agreement": 0.2})
    res = segment_with_choice(None, choice, _fake({"A": a, "B": b}))
    assert res is b
    mc = res.info["model_choice"]
    assert mc["kept"] == "large" and [t["confidence"] for t in mc["models"]] == [0.4, 0.7]
    assert mc["agreement_dice"] == pytest.approx(2 * 125 / (125 + 343), abs=1e-4)
    assert not res.info["needs_review"] and "model large kept" in res.info["notes"][0]
    assert res.info["confidence"] == 0.7 and not res.info["model_choice"]["calibrated"]   # no calibration: the kept one's
    # the other order: the first wins a tie, the higher confidence otherwise
    res = segment_with_choice(None, ModelChoice(["large", "small"], ["B", "A"], {}), _fake({"A": a, "B": b}))
    assert res.info["model_choice"]["kept"] == "large"


def test_the_choice_confidence_is_its_own_calibration_of_kept_confidence_and_agreement():
    a, b = _result(0.4, np.s_[5:10, 5:10, 5:10]), _result(0.7, np.s_[5:12, 5:12, 5:12])
    cal = {"features": ["kept_confidence", "agreement"], "coef": [0.5, 0.2], "intercept": 0.1, "fitted": True}
    meta = {"calibration": {"ensemble": cal}, "review": {"ensemble": {"threshold": 0.6}}}
    res = segment_with_choice(None, ModelChoice(["small", "large"], ["A", "B"], meta), _fake({"A": a, "B": b}))
    agreement = 2 * 125 / (125 + 343)
    assert res.info["confidence"] == pytest.approx(0.1 + 0.5 * 0.7 + 0.2 * agreement, abs=1e-4)
    assert res.info["model_choice"]["kept_confidence"] == 0.7 and res.info["review_threshold"] == 0.6
    assert res.info["needs_review"] and res.info["review_reasons"] == ["confidence below the review threshold"]


def test_the_shipped_choice_is_calibrated_on_validation():
    doc = model_meta(load_model(resolve_model_dir(CHOICE)))
    cal = doc["calibration"]["ensemble"]
    assert cal["fitted"] and cal["features"] == ["kept_confidence", "agreement"] and cal["n_cases"] > 150
    assert 0 < doc["review"]["ensemble"]["threshold"] < 1 and doc["validation"]["ensemble"]["pearson_r_confidence_dice_cv"] > 0.8


def test_models_that_disagree_flag_the_case_for_review():
    a, b = _result(0.6, np.s_[0:5, 0:5, 0:5]), _result(0.5, np.s_[10:15, 10:15, 10:15])
    res = segment_with_choice(None, ModelChoice(["m1", "m2"], ["A", "B"], {"min_model_agreement": 0.3}),
                              _fake({"A": a, "B": b}))
    assert res.info["model_choice"]["agreement_dice"] == 0.0
    assert res.info["needs_review"] and "disagree" in res.info["notes"][-1]
    assert res.info["review_reasons"] == ["the models disagree on the tumour"]


def test_a_choices_models_are_counted_as_they_load():
    """QA segfollow67 ("loading the model" stood 4-27 s at 00:00): a model choice's members are counted on the bar as
    they load, each model named with its place in the choice."""
    class Recorder:
        tick_interval = 0.0

        def __init__(self):
            self.said = []

        def update(self, n=1, message=None):
            self.said.append((n, message))

    bar = Recorder()
    choice = load_model(resolve_model_dir(CHOICE), progress=bar)
    first, second = (f"loading the model {i}/2 ({name}): member" for i, name in enumerate(choice.names, start=1))
    assert [m for _, m in bar.said] == [f"{first} {i}/3" for i in range(4)] + [f"{second} {i}/3" for i in range(4)]
    assert all(n == 0 for n, _ in bar.said)


def test_the_shipped_choice_names_both_shipped_models():
    choice = load_model(resolve_model_dir(CHOICE))
    assert isinstance(choice, ModelChoice)
    assert choice.names == [DEFAULT_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME]
    assert all(len(m[1]) == 3 for m in choice.models)
    assert model_meta(choice)["rule"] == "highest calibrated confidence"
    assert (models_root() / CHOICE / "model.json").is_file()
    assert default_model_dir() == models_root() / DEFAULT_MODEL_NAME     # not the default (issue #13's rule)


def test_a_choice_needs_two_models_and_no_nesting(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": [DEFAULT_MODEL_NAME]}))
    with pytest.raises(InputError, match="needs two or more"):
        load_model(tmp_path / "one")
    (tmp_path / "nest").mkdir()
    (tmp_path / "nest" / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1",
                                                             "models": [DEFAULT_MODEL_NAME, CHOICE]}))
    with pytest.raises(InputError, match="itself a model choice"):
        load_model(tmp_path / "nest")


def test_choice_on_a_phantom_keeps_the_more_confident_real_model():
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    ph = make_phantom(PhantomSpec(shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                                  tumour=TumourSpec(diameter_mm=30.0, location="free", side="right")), seed=3)
    seed = ph.meta["tumour"]["centre_mm"]
    choice = load_model(resolve_model_dir(CHOICE))
    res = segment_tumour(ph.ct, choice, seed_lps=seed)
    alone = [segment_tumour(ph.ct, m, seed_lps=seed) for m in choice.models]
    confs = [r.info["confidence"] for r in alone]
    assert [t["confidence"] for t in res.info["model_choice"]["models"]] == confs
    kept = int(np.argmax(confs))
    assert res.info["model_choice"]["kept"] == choice.names[kept]
    assert np.array_equal(sitk.GetArrayViewFromImage(res.tumour), sitk.GetArrayViewFromImage(alone[kept].tumour))


def test_automatic_mode_runs_the_first_model_only():
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    ph = make_phantom(PhantomSpec(shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                                  tumour=TumourSpec(diameter_mm=25.0, location="free", side="right")), seed=4)
    choice = load_model(resolve_model_dir(CHOICE))
    res = segment_tumour(ph.ct, choice, whole=False)
    assert res.info["roi_mode"] == "lungs"
    mc = res.info["model_choice"]
    assert mc["kept"] == DEFAULT_MODEL_NAME and len(mc["models"]) == 1
    alone = segment_tumour(ph.ct, choice.models[0], whole=False)
    assert np.array_equal(sitk.GetArrayViewFromImage(res.tumour), sitk.GetArrayViewFromImage(alone.tumour))


# ---------------------------------------------------------------- routed choice (ROUTE_RULE)
def _routed(meta=None):
    doc = {"rule": ROUTE_RULE, "route_volume_ml": 100.0, **(meta or {})}
    return ModelChoice(["first", "second"], ["A", "B"], doc)


def _counting(results: dict, calls: list):
    def segment(ct, model, **kwargs):
        calls.append(model)
        return results[model]
    return segment


def _with_mode(res, mode="seed"):
    res.info["roi_mode"] = mode
    return res


def test_routed_keeps_the_first_model_when_its_tumour_is_small():
    a, b = _with_mode(_result(0.4, np.s_[5:9, 5:9, 5:9])), _with_mode(_result(0.9, np.s_[5:12, 5:12, 5:12]))
    calls = []
    res = segment_with_choice(None, _routed(), _counting({"A": a, "B": b}, calls))
    assert res is a and calls == ["A"]                      # 64 ml <= 100 ml: the second model does not run
    mc = res.info["model_choice"]
    assert mc["kept"] == "first" and mc["rule"] == ROUTE_RULE and "not larger than 100 ml" in mc["why"]
    assert res.info["confidence"] == 0.4                     # no choice calibration: the first model's own


def test_routed_keeps_the_second_model_when_the_first_finds_a_large_tumour():
    a, b = _with_mode(_result(0.4, np.s_[5:11, 5:11, 5:11])), _with_mode(_result(0.9, np.s_[4:14, 4:14, 4:14]))
    calls = []
    res = segment_with_choice(None, _routed(), _counting({"A": a, "B": b}, calls))
    assert res is b and calls == ["A", "B"]                  # 216 ml > 100 ml
    mc = res.info["model_choice"]
    assert mc["kept"] == "second" and [t["tumor_volume_ml"] for t in mc["models"]] == [216.0, 1000.0]
    assert res.info["confidence"] == 0.9 and not res.info["needs_review"]   # the second model's own confidence
    assert "model second kept" in res.info["notes"][-1]


def test_routed_keeps_the_first_result_when_the_second_finds_nothing():
    a, b = _with_mode(_result(0.4, np.s_[5:11, 5:11, 5:11])), _with_mode(_result(0.9, np.s_[0:0, 0:0, 0:0]))
    res = segment_with_choice(None, _routed(), _fake({"A": a, "B": b}))
    assert res is a and res.info["model_choice"]["kept"] == "first"
    assert "found no tumour" in res.info["model_choice"]["why"]


def test_routed_automatic_mode_runs_the_first_model_only():
    a = _with_mode(_result(0.4, np.s_[2:18, 2:18, 2:18]), "lungs")
    calls = []
    res = segment_with_choice(None, _routed(), _counting({"A": a}, calls))
    assert res is a and calls == ["A"] and res.info["model_choice"]["why"].startswith("automatic mode")


@pytest.mark.parametrize("second_box, second_conf, kept, why", [
    (np.s_[5:12, 5:12, 5:12], 0.9, "second", "sure of a large tumour (343.0 ml"),   # 343 ml in (100, 500], sure
    (np.s_[5:12, 5:12, 5:12], 0.3, "first", "it is unsure too"),
    (np.s_[4:14, 4:14, 4:14], 0.9, "first", "larger than 500 ml - a leak"),        # 1000 ml > the cap
    (np.s_[5:9, 5:9, 5:9], 0.9, "first", "not larger than 100 ml"),                # 64 ml: no large tumour
])
def test_routed_when_unsure_keeps_the_second_model_only_when_it_is_sure_of_a_large_tumour(second_box, second_conf,
                                                                                        kept, why):
    """route_unsure_max_ml: a first result below its review threshold (and <= route_volume_ml) sends the case to the
    second model; its result is kept only for a tumour of route_volume_ml to route_unsure_max_ml ml that it is sure
    of (its confidence not below its own review threshold)."""
    a = _with_mode(_result(0.4, np.s_[5:8, 5:8, 5:8]))                  # 27 ml, below its threshold 0.5
    b = _with_mode(_result(second_conf, second_box))
    calls = []
    res = segment_with_choice(None, _routed({"route_unsure_max_ml": 500.0}), _counting({"A": a, "B": b}, calls))
    assert calls == ["A", "B"]
    mc = res.info["model_choice"]
    assert mc["kept"] == kept and (res is b) == (kept == "second") and why in mc["why"], mc["why"]
    assert mc["why"].startswith("the first model is unsure") and mc["route_unsure_max_ml"] == 500.0
    assert res.info["confidence"] == (second_conf if kept == "second" else 0.4)


def test_routed_when_unsure_leaves_a_sure_small_result_to_the_first_model():
    a, b = _with_mode(_result(0.8, np.s_[5:8, 5:8, 5:8])), _with_mode(_result(0.9, np.s_[5:12, 5:12, 5:12]))
    calls = []
    res = segment_with_choice(None, _routed({"route_unsure_max_ml": 500.0}), _counting({"A": a, "B": b}, calls))
    assert res is a and calls == ["A"] and "not below its review threshold" in res.info["model_choice"]["why"]
    # without route_unsure_max_ml an unsure small result stays with the first model, as before
    a = _with_mode(_result(0.4, np.s_[5:8, 5:8, 5:8]))
    calls = []
    res = segment_with_choice(None, _routed(), _counting({"A": a, "B": b}, calls))
    assert res is a and calls == ["A"]


@pytest.mark.parametrize("doc, match", [
    ({"models": ["a", "b"], "rule": "the nicest one"}, "unknown rule"),
    ({"models": ["a", "b"], "rule": ROUTE_RULE}, "route_volume_ml"),
    ({"models": ["a", "b", "c"], "rule": ROUTE_RULE, "route_volume_ml": 15}, "exactly two models"),
    ({"models": ["a", "b"], "rule": ROUTE_RULE, "route_volume_ml": 15, "route_unsure_max_ml": 10}, "larger than"),
    ({"models": ["a", "b"], "rule": ROUTE_RULE, "route_volume_ml": 15, "route_unsure_max_ml": "1 l"}, "must be a number"),
])
def test_a_routed_choice_needs_its_rule_two_models_and_a_volume(tmp_path, doc, match):
    (tmp_path / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", **doc}))
    with pytest.raises(InputError, match=match):
        load_model(tmp_path)


def test_a_routed_choice_with_the_unsure_trigger_loads_from_a_users_folder(tmp_path):
    doc = {"format": "lungai-seg-choice-1", "rule": ROUTE_RULE, "models": [DEFAULT_MODEL_NAME, DYNUNET_MODEL_NAME],
           "route_volume_ml": 15, "route_unsure_max_ml": 1000, "automatic_mode": "first model"}
    (tmp_path / "model.json").write_text(json.dumps(doc))
    choice = load_model(tmp_path)
    assert isinstance(choice, ModelChoice) and choice.meta["route_unsure_max_ml"] == 1000 and len(choice.models) == 2


def test_the_shipped_routed_choice_names_the_default_then_the_dynunet():
    routed = load_model(resolve_model_dir(ROUTED_MODEL_NAME))
    assert routed.names == [DEFAULT_MODEL_NAME, DYNUNET_MODEL_NAME]
    assert routed.meta["rule"] == ROUTE_RULE and routed.meta["route_volume_ml"] == 15
    # the second trigger (the default unsure, the DynUNet sure of a large tumour) is off: it missed its test criteria
    assert "route_unsure_max_ml" not in routed.meta


def test_routed_on_phantoms_equals_the_model_it_keeps():
    """A 20 mm tumour stays with the default U-Net (identical mask); a 100 mm one - the U-Net marks more than 15 ml
    of it - goes to the DynUNet (identical to the DynUNet alone)."""
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    routed = load_model(resolve_model_dir(ROUTED_MODEL_NAME))
    for d, kept in ((20.0, 0), (100.0, 1)):
        ph = make_phantom(PhantomSpec(shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                                      tumour=TumourSpec(diameter_mm=d, location="free", side="right")), seed=3)
        seed = ph.meta["tumour"]["centre_mm"]
        res = segment_tumour(ph.ct, routed, seed_lps=seed)
        assert res.info["model_choice"]["kept"] == routed.names[kept], (d, res.info["model_choice"])
        alone = segment_tumour(ph.ct, routed.models[kept], seed_lps=seed)
        assert np.array_equal(sitk.GetArrayViewFromImage(res.tumour), sitk.GetArrayViewFromImage(alone.tumour))
        assert res.info["confidence"] == alone.info["confidence"]


def _bench(name):
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module(name)


def test_the_routed_validation_summary_counts_tumour_cases_failures_and_the_second_model():
    import pandas as pd

    summary = _bench("seg_routed_validation").summary
    df = pd.DataFrame({"volume_true_ml": [1.0, 20.0, 30.0, 0.0], "size_mm": [10.0, 35.0, 40.0, 0.0],
                       "dice": [0.8, 0.3, 0.9, 0.0], "confidence": [0.7, 0.4, 0.8, 0.1],
                       "needs_review": [False, True, False, True],
                       "model_kept": ["first", "second", "second", "first"]})
    s = summary(df, "second")
    assert s["n"] == 3 and s["n_gt30"] == 2 and s["second_kept"] == 2     # the tumour-free case left out
    assert s["dice"] == pytest.approx(2.0 / 3) and s["dice_gt30"] == pytest.approx(0.6)
    assert s["failures_flagged"] == "1 of 1" and s["r"] > 0.9


def test_the_automatic_mode_ranking_table_counts_the_tumour_first_under_each_rule():
    import pandas as pd

    table = _bench("seg_auto_rank_validation").table
    rows = []
    for case, size, hit_rank in (("A_val-implant-1", 40.0, 2), ("A_val-implant-2", 12.0, 0)):
        for rank in (1, 2, 3):
            rows.append({"case": case, "rank": rank, "size_mm": size, "mean_p": 0.9 if rank == hit_rank else 0.5,
                         "seed_conf": 0.3 if rank == hit_rank else 0.6, "seed_review": rank != 1,
                         "hit_implant": rank == hit_rank})
    text = table(pd.DataFrame(rows))
    lines = {ln.split(" | ")[0].strip("| "): ln for ln in text.splitlines()}
    assert "| 0 of 2 | 0 of 1 | 0 of 1 | 1 of 2 |" in lines["probability mass (shipped)"]     # mass order: rank 1 first
    assert "| 1 of 2 | 1 of 1 | 0 of 1 | 1 of 2 |" in lines["mean probability"]
    assert "| 0 of 2 |" in lines["seeded confidence"]


def test_the_inside_lungs_share_table_finds_a_tumour_mostly_outside_the_lungs_only_below_the_shipped_share(tmp_path):
    """benchmarks/seg_auto_share_validation.py: a tumour 30 % inside the lungs is no candidate at the shipped share
    (0.5) and the top candidate from 0.3 down; a false mark 9.6 % inside joins at 0.05 and counts as false volume."""
    bench = _bench("seg_auto_share_validation")
    sp = np.array([2.0, 1.0, 1.0])
    zz, yy, xx = np.ogrid[:20, :60, :90]
    tumour = (2.0 * (zz - 10)) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2 <= 100        # 10 mm radius, centre x 30
    lungs = np.zeros((20, 60, 90), bool)
    lungs[:, :, :28] = True                                                           # 32 % of the tumour
    false = (2.0 * (zz - 10)) ** 2 + (yy - 30) ** 2 + (xx - 70) ** 2 <= 16
    lungs[:, :, 66:68] = True                                                         # a slab: 9.6 % of it
    binary = tumour | false
    assert 0.3 < lungs[tumour].mean() < 0.5 and 0.05 < lungs[false].mean() < 0.1
    np.savez_compressed(tmp_path / "case.npz", binary=binary, lungs=lungs, mean_p=(0.8 * binary).astype(np.float16),
                        spacing=sp, implant=tumour, own=np.zeros_like(tumour), size_mm=20.0)
    lines = {ln.split(" | ")[0].strip("| "): ln.split(" | ") for ln in bench.table(tmp_path).splitlines()
             if ln.startswith("| >=")}
    top, n_cand = 1, 5
    assert lines[">= 0.5 (shipped)"][top] == "0" and lines[">= 0.5 (shipped)"][4] == "1"     # never a candidate
    assert lines[">= 0.3"][top] == "1" and lines[">= 0.3"][n_cand] == "1"
    assert lines[">= 0.05"][n_cand] == "2" and not lines[">= 0.05"][6].startswith("0.0 ")     # the false mark kept
    assert lines[">= 0.1"][n_cand] == "1" and lines[">= 0.1"][6].startswith("0.0 ")


def test_the_cli_progress_ends_full_when_the_routed_choice_needs_one_model(tmp_path, monkeypatch, capsys):
    """`lungai segment --model lungai-seg-routed` on a small tumour runs the default only; the progress lines the
    Slicer panel reads still end at done == total."""
    from lungai.cli import main
    from lungai.progress import parse_line
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    ph = make_phantom(PhantomSpec(shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                                  tumour=TumourSpec(diameter_mm=20.0, location="free", side="right")), seed=3)
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    seed = ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), f"--seed-point={seed}",
                 "--model", ROUTED_MODEL_NAME]) == 0
    lines = [parse_line(ln) for ln in capsys.readouterr().err.splitlines()]
    fractions = [p[0] for p in lines if p]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    info = json.loads((tmp_path / "out" / "result.json").read_text())
    assert [m["model"] for m in info["model_choice"]["models"]] == [DEFAULT_MODEL_NAME]


def test_the_default_model_alone_points_to_the_routed_choice_on_a_large_tumour(tmp_path):
    """model_hint: a seeded result of the default model larger than the routed choice's 15 ml gets a note naming
    lungai-seg-routed; a smaller sure one, automatic mode, another model or the routed choice itself do not."""
    from lungai.seg.choice import model_hint

    default = default_model_dir()
    info = {"roi_mode": "seed", "tumor_volume_ml": 40.0, "notes": [], "review_reasons": []}
    assert ROUTED_MODEL_NAME in model_hint(default, info) and "15 ml" in model_hint(default, info)
    assert model_hint(default, dict(info, tumor_volume_ml=10.0)) is None
    assert model_hint(default, dict(info, roi_mode="lungs")) is None
    assert model_hint(resolve_model_dir(LARGE_TUMOUR_MODEL_NAME), info) is None
    assert model_hint(default, dict(info, model_choice={"kept": DEFAULT_MODEL_NAME})) is None
    assert model_hint(tmp_path, info) is None                      # a user's own model


def test_an_unsure_small_result_of_the_default_points_to_the_dynunet(tmp_path):
    """The default marks a few ml of many large tumours with low confidence: its unsure small results - alone or
    kept by the routed choice - name the DynUNet; a sure one, a DynUNet result or a user's model do not."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE

    unsure = {"roi_mode": "seed", "tumor_volume_ml": 1.3, "notes": [], "review_reasons": [LOW_CONFIDENCE]}
    hint = model_hint(default_model_dir(), unsure)
    assert DYNUNET_MODEL_NAME in hint and "1.3 ml" in hint and "outline" in hint
    routed = resolve_model_dir(ROUTED_MODEL_NAME)
    assert DYNUNET_MODEL_NAME in model_hint(routed, dict(unsure, model_choice={"kept": DEFAULT_MODEL_NAME}))
    assert model_hint(routed, dict(unsure, model_choice={"kept": DYNUNET_MODEL_NAME})) is None
    assert model_hint(default_model_dir(), dict(unsure, review_reasons=[])) is None
    assert model_hint(default_model_dir(), dict(unsure, roi_mode="lungs")) is None
    assert model_hint(resolve_model_dir(DYNUNET_MODEL_NAME), unsure) is None
    assert model_hint(tmp_path, unsure) is None
    assert model_hint(default_model_dir(), dict(unsure, tumor_volume_ml=0.0)) is None     # nothing found: no hint


def test_no_model_advice_for_a_seed_or_box_in_bone_or_far_from_the_lungs():
    """QA on LUNG1-003: an ROI box in the arm (0.7 ml found, flagged "far from the lungs") was told the default model
    is unsure and the DynUNet segments large tumours better.  A seed / box flagged in bone or far from the lungs gets
    no model advice - in the notes or in the low confidence's action: the first fix is to move it."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE, MODE_ACTIONS, REVIEW_ACTIONS, review_actions
    from lungai.seg.preprocess import DENSE_REASON, FAR_REASON, reason_in_mode

    for mode in ("roi", "seed"):
        for off in (FAR_REASON, DENSE_REASON):
            for vol in (0.7, 40.0):
                info = {"roi_mode": mode, "tumor_volume_ml": vol, "notes": [], "n_components": 1,
                        "review_reasons": [LOW_CONFIDENCE, reason_in_mode(off, mode)]}     # as a result says it
                assert model_hint(default_model_dir(), info) is None, (mode, off, vol)
                low, move = review_actions(info)
                marked = {"roi": "move your ROI box", "seed": "move the seed"}[mode]
                assert "--model" not in low and "DynUNet" not in low and marked in low
                assert move == MODE_ACTIONS.get(mode, {}).get(off, REVIEW_ACTIONS[off]) and marked in move
    # the same result without the flag: the advice and the action as before
    info = {"roi_mode": "roi", "tumor_volume_ml": 0.7, "notes": [], "n_components": 1,
            "review_reasons": [LOW_CONFIDENCE]}
    assert DYNUNET_MODEL_NAME in model_hint(default_model_dir(), info)
    assert review_actions(info) == [MODE_ACTIONS["roi"][LOW_CONFIDENCE]]


def test_the_cli_prints_the_routed_hint_for_the_default_model_on_a_large_tumour(tmp_path, capsys):
    from lungai.cli import main
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    ph = make_phantom(PhantomSpec(shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                                  tumour=TumourSpec(diameter_mm=100.0, location="free", side="right")), seed=3)
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    seed = ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), f"--seed-point={seed}"]) == 0
    info = json.loads((tmp_path / "out" / "result.json").read_text())
    assert info["tumor_volume_ml"] > 15 and any(ROUTED_MODEL_NAME in n for n in info["notes"])
    assert ROUTED_MODEL_NAME in capsys.readouterr().out


def test_training_text_of_a_users_malformed_model_json_never_raises():
    """Review of b32d194: a user's model.json with "training": "a string" raised AttributeError in training_text
    after the demo's segmentation (a half-written folder).  Text is used as it is; other types of the optional
    fields the demo's report reads (training and its parts, description, validation) are "not recorded"."""
    from lungai.demo.pipeline import _fmt_r
    from lungai.seg.choice import training_text

    assert training_text(({}, [], {"training": "  our hospital's 120 CTs "})) == "our hospital's 120 CTs"
    not_recorded = "training data not recorded in its model.json"
    for training in (3, ["a"], True, "", None, {"train_sources": "user images"}, {"train_sources": ["x"]},
                     {"train_sources": {"user images": "many"}}):
        assert training_text(({}, [], {"training": training})) == not_recorded, training
        assert training_text(({}, [], {"training": training, "description": 5})) == not_recorded, training
        assert training_text(({}, [], {"training": training, "description": " mine "})) == "mine", training
    odd = {"train_sources": {"user images": 4}, "case_sources": "elsewhere", "n_train_cases": "four",
           "n_train_patients": None, "command": 12}
    assert training_text(({}, [], {"training": odd})) == "trained on: 4 image crops"
    choice = ModelChoice(["a", "b"], [({}, [], {"training": 3}), ({}, [], {"training": "b's data"})], {"description": 5})
    assert training_text(choice) == f"a: {not_recorded}; b: b's data"
    for validation in ("see paper", [1], None, {"ensemble": "x"}, {"ensemble": {"pearson_r_confidence_dice_cv": "0.5"}}):
        assert _fmt_r({"validation": validation}) == "not recorded", validation
    assert _fmt_r({"validation": {"ensemble": {"pearson_r_confidence_dice_cv": 0.456}}}) == "0.46"


def test_training_text_counts_whole_cts_apart_from_crops():
    """QA: a model trained on 9 LIDC crops and a whole planning CT was described as trained on "10 image crops".
    Whole CTs (model.json source "user whole CT") are said apart, with the crops and one folder; an older
    model.json's "user images" still reads as crops (the shipped models' texts unchanged)."""
    from lungai.seg.choice import training_text

    t = {"n_train_cases": 13, "n_train_patients": 7, "case_sources": {"images": "/data/d2/images"},
         "train_sources": {"user images": 9, "user whole CT": 1, "synthetic phantom": 3}}
    assert training_text(({}, [], {"training": t})) == \
        "trained on 13 cases of 7 patients: 9 image crops and 1 whole CT (d2/images), 3 synthetic phantoms"
    t["train_sources"] = {"user whole CT": 2, "synthetic whole chest": 1}
    assert training_text(({}, [], {"training": t})) == \
        "trained on 13 cases of 7 patients: 2 whole CTs (d2/images), 1 synthetic whole chest"
    old = {"train_sources": {"user images": 617, "synthetic phantom": 98}, "command": "x --images a/lidc/image"}
    assert training_text(({}, [], {"training": old})) == "trained on: 617 image crops (lidc/image), 98 synthetic phantoms"


@pytest.mark.parametrize("models, match", [
    ([".", DEFAULT_MODEL_NAME], "not a model folder's name"),       # the choice itself: loaded itself without end
    (["..", DEFAULT_MODEL_NAME], "not a model folder's name"),
    ([5, {"a": 1}], "not a model folder's name"),
    (["../shape", DEFAULT_MODEL_NAME], "not a model folder's name"),
    (["sub/shape", DEFAULT_MODEL_NAME], "not a model folder's name"),
    (["sub\\shape", DEFAULT_MODEL_NAME], "not a model folder's name"),
    ([str(models_root() / DEFAULT_MODEL_NAME), DEFAULT_MODEL_NAME], "not a model folder's name"),
    (["choice_x", DEFAULT_MODEL_NAME], "itself a model choice"),     # its own folder's name, as a sibling
    (["no_such_model", DEFAULT_MODEL_NAME], "neither a folder"),
])
def test_a_choice_names_plain_model_folders_only(tmp_path, models, match):
    choice = tmp_path / "m" / "choice_x"
    choice.mkdir(parents=True)
    (choice / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": models}))
    with pytest.raises(InputError, match=match):
        load_model(choice)


def test_a_choice_refuses_a_models_entry_that_is_no_list(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": "ab"}))
    with pytest.raises(InputError, match="not a list of model names"):
        load_model(tmp_path)


def test_a_choice_reads_a_sibling_model_folder(tmp_path):
    import shutil

    shutil.copytree(models_root() / DEFAULT_MODEL_NAME, tmp_path / "mine")
    (tmp_path / "choice").mkdir()
    (tmp_path / "choice" / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1",
                                                               "models": ["mine", LARGE_TUMOUR_MODEL_NAME]}))
    choice = load_model(tmp_path / "choice")
    assert choice.names == ["mine", LARGE_TUMOUR_MODEL_NAME] and len(choice.models) == 2


@pytest.mark.shared_data
def test_the_dynunet_hint_gives_lung1_003s_gtv_size_as_measured(shared_data):
    """The DynUNet hint's test case is LUNG1-003's GTV-1: 35 ml, 62 mm longest axial diameter (the data README's
    ~62 mm; 84 mm in 3D) - not the 71 mm it said (its front-to-back extent).  Measured again when the data is here."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE

    hint = model_hint(default_model_dir(), {"roi_mode": "seed", "tumor_volume_ml": 1.3, "notes": [],
                                            "review_reasons": [LOW_CONFIDENCE]})
    assert "71 mm" not in hint and "LUNG1-003's 35 ml GTV (62 mm" in hint
    labels = shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-003_labels.nii.gz"
    if not labels.is_file():
        pytest.skip("no LUNG1-003 labels")
    from scipy.spatial.distance import pdist

    image = sitk.ReadImage(str(labels))
    gtv = sitk.GetArrayFromImage(image) == 1
    spacing = np.array(image.GetSpacing()[:2])[::-1]
    axial = max(pdist(np.argwhere(s) * spacing).max() for s in gtv if s.sum() > 1)
    assert round(gtv.sum() * np.prod(image.GetSpacing()) / 1000) == 35 and round(axial) == 62


def _words(text: str) -> str:
    return " ".join(text.replace("`", "").replace("**", "").split())


def test_a_routed_result_is_not_advised_the_routed_choice(tmp_path):
    """QA newfollow66 (``lungai segment LUNG1-002_ct.nii.gz --model lungai-seg-routed --seed-point=-74.5,16.4,-18.7``:
    the default's 4.7 ml kept, flagged): the note advised "--model lungai-seg-routed runs it when the default model
    finds more than 15 ml" to a user already running it.  It names the DynUNet and says why the routed choice kept
    the default's result; the default model alone still names the routed choice."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE

    unsure = {"roi_mode": "seed", "tumor_volume_ml": 4.7, "notes": [], "review_reasons": [LOW_CONFIDENCE]}
    routed = resolve_model_dir(ROUTED_MODEL_NAME)
    if not (routed / "model.json").is_file():
        pytest.skip("the shipped models are not installed")
    hint = model_hint(routed, dict(unsure, model_choice={"kept": DEFAULT_MODEL_NAME}))
    assert f"--model {DYNUNET_MODEL_NAME}" in hint, hint
    assert f"--model {ROUTED_MODEL_NAME} runs it" not in hint, hint
    assert "no more than 15 ml" in hint and "run here" in hint, hint
    alone = model_hint(default_model_dir(), unsure)
    assert f"--model {ROUTED_MODEL_NAME} runs it" in alone, alone


def test_large_tumour_advice_is_the_same_everywhere():
    """QA: lungai segment's note advised lungai-seg-dynunet for a large tumour while README advised the large-tumour
    U-Net (lungai-seg-unet-large).  The advice is one text (lungai.seg.resources.large_tumour_advice) that the note,
    --model's help, the panel's Model tooltip and README give - the DynUNet, the best seeded Dice on large tumours
    (docs/segmentation.md: implants >= 30 mm 0.824 vs the large U-Net's 0.647, lung2 0.800 vs 0.51)."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE
    from lungai.seg.resources import (LARGE_TUMOUR_ADVICE_MODEL, MODEL_HELP, PANEL_MODEL_LABELS, large_tumour_advice,
                                      panel_model_tooltip)

    cli, panel = large_tumour_advice(), large_tumour_advice(panel=True)
    assert f"--model {LARGE_TUMOUR_ADVICE_MODEL}" in cli and PANEL_MODEL_LABELS[LARGE_TUMOUR_ADVICE_MODEL] in panel
    assert "--model" not in panel
    unsure = {"roi_mode": "seed", "tumor_volume_ml": 1.3, "notes": [], "review_reasons": [LOW_CONFIDENCE]}
    large = {"roi_mode": "seed", "tumor_volume_ml": 40.0, "notes": [], "review_reasons": []}
    for info in (unsure, large):
        assert cli in model_hint(default_model_dir(), info)
    assert cli in MODEL_HELP and panel in panel_model_tooltip()
    readme = _words((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8"))
    assert _words(cli) in readme
    assert "use the shipped large-tumour model" not in readme


def test_the_panels_model_labels_are_the_shipped_models():
    """The panel's Model choices map to the shipped models through the one table the advice names them by."""
    from lungai.seg.resources import PANEL_MODEL_LABELS

    assert set(PANEL_MODEL_LABELS) == {p.name for p in models_root().iterdir() if (p / "model.json").is_file()}


def test_the_model_hints_quote_the_shipped_dynunets_test_dice():
    """QA: model_hint quoted the DynUNet's first weights ("LUNG1-003's 35 ml GTV ... Dice 0.07 -> 0.61", "lung2
    Dice 0.36 -> 0.86"); the shipped retrained weights measure GTV-1 0.597 and lung2 0.800 (docs/segmentation.md, "The
    DynUNet retrained", test row (3)).  The figures are one table (lungai.seg.resources.DYNUNET_TEST_DICE) that both
    hints quote and that agrees with that docs table; README quotes the same figures."""
    import re

    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE

    large = {"roi_mode": "seed", "tumor_volume_ml": 40.0, "notes": [], "review_reasons": []}
    unsure = {"roi_mode": "seed", "tumor_volume_ml": 1.3, "notes": [], "review_reasons": [LOW_CONFIDENCE]}
    hints = model_hint(default_model_dir(), large) + model_hint(default_model_dir(), unsure)
    assert "lung2 Dice 0.36 -> 0.800" in hints and "Dice 0.07 -> 0.597" in hints, hints
    assert "0.61" not in hints and "0.86" not in hints
    from lungai.seg.resources import DYNUNET_TEST_DICE

    root = Path(__file__).resolve().parents[1]
    docs = (root / "docs" / "segmentation.md").read_text(encoding="utf-8")
    retrained = docs[docs.index("### The DynUNet retrained"):docs.index("### The first DynUNet weights")]
    rows = {"lung2": r"\| \(3\) `lung2` 55 mm \| [^|]+\| ([0-9.]+) ",
            "LUNG1-003 GTV-1": r"\| \(3\) LUNG1-003 GTV-1 71 mm / GTV-2 49 mm \| [^|]+\| ([0-9.]+) "}
    for case, row in rows.items():
        assert DYNUNET_TEST_DICE[case][1] == re.search(row, retrained).group(1), case
    readme = _words((root / "README.md").read_text(encoding="utf-8"))
    assert "lung2 0.800" in readme and "LUNG1-003 GTV-1 0.597" in readme


def test_no_model_advice_for_an_roi_in_bounds_order_or_voxel_indices():
    """QA on lung2: `--roi=28.9,82.8,-115.7,-75.0,-285.0,-235.0` (its lesion's bounds in Slicer's order) found 106 ml
    with low confidence, and the to-do lines said "draw an ROI box round the tumour ... or try another model (--model,
    e.g. the DynUNet ...)" and a note named the DynUNet, next to the bounds-order reason.  The box's numbers are the
    first fix: an ROI flagged as bounds order / voxel indices gets no model advice - in the notes or in the low
    confidence's action, which says to run again with the numbers the note gives."""
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE, REVIEW_ACTIONS, review_actions
    from lungai.seg.preprocess import ROI_ORDER_REASON, VOXEL_INDEX_REASON, reason_in_mode

    for mode, wrong in (("roi", ROI_ORDER_REASON), ("roi", VOXEL_INDEX_REASON), ("seed", VOXEL_INDEX_REASON)):
        for vol in (0.7, 106.0):
            info = {"roi_mode": mode, "tumor_volume_ml": vol, "notes": [], "n_components": 1,
                    "review_reasons": [LOW_CONFIDENCE, reason_in_mode(wrong, mode)]}      # as a result says it
            assert model_hint(default_model_dir(), info) is None, (mode, wrong, vol)
            low, fix = review_actions(info)
            assert "--model" not in low and "DynUNet" not in low and "the numbers the note gives" in low, low
            assert fix == REVIEW_ACTIONS[wrong]


@pytest.mark.parametrize("confs, threshold, kept_text, other_text", [
    ((0.6398, 0.6402), 0.644, "0.6402", "0.6398"),     # the models apart only at 4 decimals
    ((0.35, 0.6402), 0.644, "0.640", "0.350"),          # the choice apart from its threshold at 3
    ((0.35, 0.7033), 0.644, "0.70", "0.35"),            # apart at two decimals: as before
])
def test_a_choices_note_shows_the_confidences_apart(confs, threshold, kept_text, other_text):
    """QA seg69: the model choice's note said every confidence with two decimals - "model large kept (its confidence
    0.64; small 0.64) ... confidence of the choice 0.64" of 0.6402 against 0.6398, flagged below the review threshold
    0.644 - while lungai segment's summary line shows the confidence apart from its threshold (review_digits)."""
    a, b = _result(confs[0], np.s_[5:10, 5:10, 5:10]), _result(confs[1], np.s_[5:12, 5:12, 5:12])
    for r in (a, b):
        r.info["review_threshold"] = threshold
    res = segment_with_choice(None, ModelChoice(["small", "large"], ["A", "B"], {}), _fake({"A": a, "B": b}))
    note = next(n for n in res.info["notes"] if n.startswith("model large kept"))
    assert (f"(its confidence {kept_text}; small {other_text})" in note
            and note.endswith(f"confidence of the choice {kept_text}")), note
