"""``lungai rp train`` / ``validate`` / ``predict`` on a cohort table whose ``tumour_notes`` column (``lungai cohort``:
a structure that may be tumour left out of it - LUNG1-003's GTV-1 renamed 'Tumour_main', QA cohortfollow72) flags a
patient: said once, as the ``lung_notes`` rows are; and ``rp predict``'s per-row ``warnings`` cell names both
columns' notes (before: the ``lung_notes`` were said of the whole table only, the row's cell empty)."""

from __future__ import annotations

import json

from lungai.rp import make_cohort
from rp_helpers import cli_train_fast_lr

TUMOUR = ("structure 'Tumour_main' is named like a tumour but its name has no role, so it is not used as a GTV (role "
          "gtv: not the tumour, not subtracted from the lungs); if it is one, map it with --structure-map "
          "('Tumour_main: gtv')")
LUNG = ("radiomics lungs: segment 'lungs' does not look like the lungs (75 ml, mean -237 HU; both lungs are over "
        "1000 ml and mostly air, below -500 HU): are the lungs given really the lungs?")
SAID = "the tumour of 1 patient may leave out a GTV (tumour_notes"


def _said(err: str) -> list[str]:
    return [line[len("warning: "):] for line in err.splitlines() if line.startswith("warning: ")]


def _flagged(table):
    table["tumour_notes"] = [""] * 3 + [TUMOUR] + [""] * (len(table) - 4)
    table["lung_notes"] = [""] * 5 + [LUNG] + [""] * (len(table) - 6)
    return table


def test_rp_says_the_rows_with_tumour_notes_and_predict_names_both_notes_in_the_rows(tmp_path, capsys, monkeypatch):
    import pandas as pd

    from lungai.cli import main
    from note_helpers import notes_made

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = _flagged(make_cohort(60, seed=2).table)
    table.to_csv(tmp_path / "t.csv", index=False)
    case, lung_case = table["case"][3], table["case"][5]
    made = notes_made(monkeypatch)
    assert cli_train_fast_lr(tmp_path / "t.csv", tmp_path / "m") == 0
    said = [t for t in _said(capsys.readouterr().err) if SAID in t]
    assert len(said) == 1 and said[0].startswith(f"training table: {SAID}, e.g. {case}): "), said
    assert "--structure-map" in said[0] and "re-run lungai cohort" in said[0], said
    note = next(n for n in made if str(n) == said[0])
    assert case not in note.without_ids and "(tumour_notes)" in note.without_ids, note.without_ids
    assert said[0] in json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))["warnings"]
    # the model card counts both kinds of row, as it counts tumour_review's (QA notesfollow72: n_tumour_review only)
    td = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))["training_data"]
    assert td["n_tumour_notes"] == 1 and td["n_lung_notes"] == 1, td
    card_md = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    assert "1 patient whose tumour may leave out a GTV (tumour_notes)" in card_md
    assert "1 patient whose lungs may not be the whole lungs (lung_notes)" in card_md
    ext = _flagged(make_cohort(40, seed=31).table)                 # other patients: an external validation
    ext.to_csv(tmp_path / "ext.csv", index=False)
    model = str(tmp_path / "m")
    assert main(["rp", "validate", model, str(tmp_path / "ext.csv"), "-o", str(tmp_path / "v")]) == 0
    assert len([t for t in _said(capsys.readouterr().err) if t.startswith(f"validation table: {SAID}")]) == 1
    assert main(["rp", "predict", model, str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    assert len([t for t in _said(capsys.readouterr().err) if t.startswith(f"patients table: {SAID}")]) == 1
    pred = pd.read_csv(tmp_path / "p.csv", keep_default_na=False).set_index("case")
    assert f"the tumour may leave out a GTV ({TUMOUR})" in pred.loc[case, "warnings"], pred.loc[case, "warnings"]
    assert f"the lungs may not be the whole lungs ({LUNG})" in pred.loc[lung_case, "warnings"], \
        pred.loc[lung_case, "warnings"]
    others = pred.drop(index=[case, lung_case])["warnings"]
    assert not others.str.contains("may leave out a GTV|may not be the whole lungs").any()


def test_rp_predict_names_the_lung_notes_in_the_rows_warnings(tmp_path, monkeypatch):
    """A table of lung_notes only (no tumour_notes column, as the cohort72 tables): the row's cell says them."""
    import pandas as pd

    from lungai.cli import main

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = make_cohort(60, seed=2).table
    table["lung_notes"] = [""] * 5 + [LUNG] + [""] * (len(table) - 6)
    table.to_csv(tmp_path / "t.csv", index=False)
    assert cli_train_fast_lr(tmp_path / "t.csv", tmp_path / "m") == 0
    assert main(["rp", "predict", str(tmp_path / "m"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv", keep_default_na=False).set_index("case")
    assert f"the lungs may not be the whole lungs ({LUNG})" in pred.loc[table["case"][5], "warnings"], pred["warnings"]
    assert not pred.drop(index=[table["case"][5]])["warnings"].str.contains("whole lungs").any()
