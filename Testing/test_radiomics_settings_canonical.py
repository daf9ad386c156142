"""QA: the same radiomics settings written otherwise (``binWidth: 25.0`` for ``25``, ``resampledPixelSpacing:
[2.0, 2.0, 2.0]``) had another settings id and another resume key: pyradiomics' lung1 with both files gave the same 42
values under sha256:a5e3a503b599 and sha256:fe655c3013c2, radiomics-batch refused to resume a run of one with the other
("holds 1 case(s) done with other parameters or segments", naming no difference) and rp refused the features as other
settings.  Whole numbers now count as integers (LoG sigma as decimals, as lungai writes them); ids and keys an older
lungai wrote are still recognised.  And a Square / Wavelet image with pyradiomics' own crop (``preCrop``,
``resampledPixelSpacing: [0, 0, 0]``), whose values the whole-CT revision did not change (pyradiomics crops to the
segment's box + padDistance before filtering), no longer carries that revision; its ids / keys with it are accepted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.radiomics import load_params
from lungai.radiomics.settings import SETTINGS_COLUMN, _hash_id, settings_id, value_settings, write_sidecar

INT = "setting:\n  binWidth: 25\n  resampledPixelSpacing: [2, 2, 2]\n  interpolator: sitkLinear\n" \
      "imageType: {Original: {}, LoG: {sigma: [1.0, 3.0]}}\nfeatureClass: {firstorder: [], glcm: []}\n"
FLT = "# the same settings, other order, decimals\nfeatureClass: {glcm: [], firstorder: []}\n" \
      "imageType: {LoG: {sigma: [1, 3]}, Original: {}}\nsetting:\n  interpolator: sitkLinear  # linear\n" \
      "  resampledPixelSpacing: [2.0, 2.0, 2.0]\n  binWidth: 25.0\n"


def _load(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return load_params(str(f))


def _old_id(params):
    """The id a lungai before the canonical numbers gave ``params`` (numbers hashed as written)."""
    from lungai.radiomics.settings import lungai_value_settings

    setting = {k: v for k, v in params["setting"].items() if k not in ("label", "additionalInfo", "enableCExtensions")}
    return _hash_id({"setting": setting, "imageType": params["imageType"], "lungai": lungai_value_settings(params)})


def _key_of(doc):
    """A resume key as radiomics-batch wrote it (sha256 of the sorted JSON of its parameters, segments, revisions)."""
    import hashlib

    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_equal_numbers_give_one_id_and_lungai_ids_are_kept(tmp_path):
    a, b = _load(tmp_path, "int.yaml", INT), _load(tmp_path, "flt.yaml", FLT)
    assert settings_id(a) == settings_id(b)
    assert settings_id(a) == _old_id(a)                 # written as lungai writes them: the id it had
    assert settings_id(load_params("default", image_types=["Original", "LoG"], log_sigma=[1.0, 3.0])) \
        == _old_id(load_params("default", image_types=["Original", "LoG"], log_sigma=[1.0, 3.0]))
    assert settings_id({"setting": {"binWidth": 25}, "imageType": {"Original": {}}}) \
        != settings_id({"setting": {"binWidth": 26}, "imageType": {"Original": {}}})
    assert settings_id({"setting": {"normalize": True}}) != settings_id({"setting": {"normalize": 1}})


def test_batch_resumes_a_run_keyed_with_decimals_by_an_older_lungai(tmp_path):
    from lungai.radiomics.batch import PARAMS_RECORD, _part_mismatch, _part_record, _prepare_parts
    from lungai.radiomics.settings import value_revisions

    a, b = _load(tmp_path, "int.yaml", INT), _load(tmp_path, "flt.yaml", FLT)
    # the same file again; the other file (its params.json tells, or the key of its numbers written either way)
    # (a run of the integers resumed with the decimals has the current key itself: resumed, nothing to say)
    for then, now, record in ((b, b, True), (b, a, True), (b, a, False), (a, b, False)):
        out = tmp_path / "f.csv"
        parts = tmp_path / "f.csv.parts"
        parts.mkdir(exist_ok=True)
        # as the older lungai left it: the key of the parameters as written, their id in the case done
        (parts / "params.key").write_text(_key_of({"params": then, "segments": None, **value_revisions(then)}),
                                          encoding="utf-8")
        (parts / PARAMS_RECORD).unlink(missing_ok=True)
        if record:
            (parts / PARAMS_RECORD).write_text(json.dumps({"params": then, "segments": None}, default=str),
                                               encoding="utf-8")
        pd.DataFrame({"case": ["c1"], "value": [1.0], SETTINGS_COLUMN: [_old_id(then)]}).to_csv(parts / "c1.csv",
                                                                                               index=False)
        # the record of the part written (its rows, size, hash): still the part's once its id is rewritten
        (parts / "c1.inputs.json").write_text(json.dumps({"part_rows": 1, **_part_record(parts / "c1.csv")}),
                                              encoding="utf-8")
        _, note = _prepare_parts(out, now, None)
        assert _part_mismatch(parts / "c1.csv", json.loads((parts / "c1.inputs.json").read_text())) is None
        assert (note and "keyed otherwise by an older lungai" in note) or (then is a and note is None)
        assert (parts / "c1.csv").is_file()
        assert pd.read_csv(parts / "c1.csv")[SETTINGS_COLUMN].tolist() == [settings_id(now)]


def test_rp_accepts_features_whose_id_an_older_lungai_gave_with_decimals(tmp_path):
    from lungai.rp.prepare import model_settings_ids, settings_warnings, training_radiomics_settings

    a, b = _load(tmp_path, "int.yaml", INT), _load(tmp_path, "flt.yaml", FLT)
    old_settings = json.loads(json.dumps(value_settings(b)))
    old_settings["setting"]["binWidth"] = 25.0          # as an older lungai recorded the file's numbers
    old_settings["setting"]["resampledPixelSpacing"] = [2.0, 2.0, 2.0]
    old_settings["imageType"]["LoG"]["sigma"] = [1, 3]
    old = _hash_id(old_settings)
    assert old == _old_id(b) and old != settings_id(a)
    # an old model (id of the decimals): current tables accepted
    card = {"radiomics_settings": {"id": old, "settings": old_settings}, "roles": {"id_column": "case"}}
    assert settings_id(a) in model_settings_ids(card)
    # an old table (with its sidecar) for a current model
    table = tmp_path / "old.csv"
    pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [old]}).to_csv(table, index=False)
    (tmp_path / "old.settings.json").write_text(json.dumps({"id": old, "settings": old_settings}), encoding="utf-8")
    new_card = {"radiomics_settings": {"id": settings_id(a), "settings": value_settings(a)},
                "roles": {"id_column": "case"}}
    assert settings_warnings(pd.read_csv(table), new_card, "patients table", sources=[table]) == [""]
    # a training table mixing the old and the current id: one settings
    new = tmp_path / "new.csv"
    pd.DataFrame({"case": ["p2"], SETTINGS_COLUMN: [settings_id(a)]}).to_csv(new, index=False)
    write_sidecar(new, a)
    both = pd.concat([pd.read_csv(table), pd.read_csv(new)])
    entry = training_radiomics_settings(both, ["rad_x"], sources=[table, new])
    assert entry["id"] == settings_id(a)
    # without the sidecars, two ids are still refused (nothing tells they are one settings)
    from lungai.errors import InputError

    with pytest.raises(InputError, match="mixes radiomic features computed with 2 different settings"):
        training_radiomics_settings(both, ["rad_x"])


@pytest.mark.parametrize("extra", [{"preCrop": True}, {"resampledPixelSpacing": [0, 0, 0]}])
def test_no_whole_ct_revision_where_pyradiomics_crops_itself(extra):
    from lungai.radiomics.settings import value_revisions

    for types in ({"Original": {}, "Wavelet": {}}, {"Square": {}}):
        params = {"setting": {"binWidth": 25, **extra}, "imageType": types}
        assert value_revisions(params) == {}
        from lungai.radiomics.settings import dropped_revisions

        assert dropped_revisions(params) == {"whole_ct_revision": 2}
        # the id an older lungai wrote before the revision (the same values) is the id again
        assert settings_id(params) == _hash_id({"setting": params["setting"], "imageType": types, "lungai": {}})
    # normalize still changed values (the crop's statistics then, the CT's now): revision kept
    normalised = {"setting": {"binWidth": 0.25, "normalize": True, **extra}, "imageType": {"Original": {}}}
    assert value_revisions(normalised) == {"whole_ct_revision": 2}
    assert value_revisions({"setting": {"binWidth": 25}, "imageType": {"Wavelet": {}}}) == {"whole_ct_revision": 2}


def test_ids_keys_and_cohort_inputs_with_the_dropped_revision_are_accepted(tmp_path):
    from lungai.radiomics.batch import _prepare_parts
    from lungai.rp.prepare import model_settings_ids

    params = {"setting": {"binWidth": 25, "preCrop": True}, "imageType": {"Original": {}, "Wavelet": {}},
              "featureClass": {"firstorder": []}}
    recorded = value_settings(params)
    recorded["lungai"]["whole_ct_revision"] = 2        # as the lungai before this fix recorded it
    card = {"radiomics_settings": {"id": _hash_id(recorded), "settings": recorded}, "roles": {}}
    assert settings_id(params) in model_settings_ids(card)
    out, parts = tmp_path / "f.csv", tmp_path / "f.csv.parts"
    parts.mkdir()
    (parts / "params.key").write_text(_key_of({"params": params, "segments": None, "whole_ct_revision": 2}),
                                      encoding="utf-8")
    pd.DataFrame({"case": ["c1"], SETTINGS_COLUMN: [_hash_id(recorded)]}).to_csv(parts / "c1.csv", index=False)
    _, note = _prepare_parts(out, params, None)
    assert note and "keyed otherwise" in note and (parts / "c1.csv").is_file()
    assert pd.read_csv(parts / "c1.csv")[SETTINGS_COLUMN].tolist() == [settings_id(params)]


@pytest.mark.parametrize("sigma", [[3.0, 1.0], [1.0, 1.0, 3.0], [3, 1.0, 1]])
def test_log_sigmas_in_another_order_or_repeated_are_one_settings(tmp_path, sigma):
    """QA logsigma60: pyradiomics' lung1 with LoG sigma [1.0, 3.0], [3.0, 1.0] and [1.0, 1.0, 3.0] gave the same 54
    values (one image per sigma, named by it) under three settings ids; an id of the older order stays accepted."""
    from lungai.radiomics.settings import current_id
    from lungai.rp.prepare import model_settings_ids, training_radiomics_settings

    ref = {"setting": {"binWidth": 25}, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}}}
    other = {"setting": {"binWidth": 25}, "imageType": {"Original": {}, "LoG": {"sigma": sigma}}}
    assert settings_id(other) == settings_id(ref)
    # the global setting sigma likewise; a different set of sigmas stays another id
    assert settings_id({"setting": {"sigma": sigma}, "imageType": {"LoG": {}}}) \
        == settings_id({"setting": {"sigma": [1.0, 3.0]}, "imageType": {"LoG": {}}})
    assert settings_id({**ref, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0]}}}) != settings_id(ref)
    # as the older lungai recorded it (sigma in the order given): its id is the current one's
    old_settings = {"setting": {"binWidth": 25},
                    "imageType": {"Original": {}, "LoG": {"sigma": [float(s) for s in sigma]}}, "lungai": {}}
    old = _hash_id(old_settings)
    assert old != settings_id(ref)
    assert current_id(old, old_settings) == settings_id(ref)
    card = {"radiomics_settings": {"id": old, "settings": old_settings}, "roles": {"id_column": "case"}}
    assert settings_id(ref) in model_settings_ids(card)
    table, new = tmp_path / "old.csv", tmp_path / "new.csv"
    pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [old]}).to_csv(table, index=False)
    (tmp_path / "old.settings.json").write_text(json.dumps({"id": old, "settings": old_settings}), encoding="utf-8")
    pd.DataFrame({"case": ["p2"], SETTINGS_COLUMN: [settings_id(ref)]}).to_csv(new, index=False)
    write_sidecar(new, ref)
    both = pd.concat([pd.read_csv(table), pd.read_csv(new)])
    assert training_radiomics_settings(both, ["rad_x"], sources=[table, new])["id"] == settings_id(ref)


def test_rp_train_refusal_without_sidecars_says_how_to_give_the_rows_one_id():
    """QA logsigma60: tables of one settings written otherwise by an older lungai (ids differ), joined without their
    sidecars: the refusal said only the lung-spacing case; it names the ids nothing records and the commands that
    give every row the current id."""
    from lungai.errors import InputError
    from lungai.rp.prepare import training_radiomics_settings

    old = _hash_id({"setting": {"binWidth": 25.0}, "imageType": {"Original": {}}, "lungai": {}})
    now = settings_id({"setting": {"binWidth": 25}, "imageType": {"Original": {}}})
    both = pd.DataFrame({"case": ["p1", "p2"], SETTINGS_COLUMN: [old, now]})
    with pytest.raises(InputError) as exc:
        training_radiomics_settings(both, ["rad_x"])
    assert f"nothing records the settings of {', '.join(sorted([old, now]))}" in exc.value.problem
    for words in ("binWidth 25.0 for 25", "LoG sigmas in another order", "run `lungai radiomics` again with the same "
                  "--params", "`lungai radiomics-batch` / `lungai cohort`", "into the same output", ".settings.json"):
        assert words in exc.value.fix


def test_batch_resumes_a_run_of_the_same_log_sigmas_in_another_order(tmp_path):
    """A radiomics-batch run with LoG sigma [1.0, 3.0] resumed with [3.0, 1.0] (the same values): resumed, not refused
    as other parameters; a run keyed with the sigmas in the order given (by the lungai before) likewise."""
    from lungai.radiomics.batch import _prepare_parts
    from lungai.radiomics.settings import canonical_params

    ref = {"setting": {"binWidth": 25}, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}}}
    other = {"setting": {"binWidth": 25}, "imageType": {"Original": {}, "LoG": {"sigma": [3.0, 1.0, 1.0]}}}
    for then, now in ((ref, other), (other, other), (other, ref)):
        out = tmp_path / "f.csv"
        parts = tmp_path / "f.csv.parts"
        parts.mkdir(exist_ok=True)
        (parts / "params.key").write_text(_key_of({"params": canonical_params(then, sigma_set=False),
                                                   "segments": None}), encoding="utf-8")
        pd.DataFrame({"case": ["c1"], "value": [1.0], SETTINGS_COLUMN: [_hash_id(
            {"setting": then["setting"], "imageType": then["imageType"], "lungai": {}})]}).to_csv(parts / "c1.csv",
                                                                                              index=False)
        _, note = _prepare_parts(out, now, None)
        assert (parts / "c1.csv").is_file()
        assert pd.read_csv(parts / "c1.csv")[SETTINGS_COLUMN].tolist() == [settings_id(ref)]
        assert (note and "LoG sigmas in another order" in note) or (then is ref and note is None)
