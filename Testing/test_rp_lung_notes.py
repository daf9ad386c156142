"""``lungai rp train`` / ``validate`` / ``predict`` on a cohort table whose ``lung_notes`` column (``lungai cohort``:
a lung structure that does not look like a lung, one lung absent, lungs under 1000 ml) flags patients: said once, as
the ``lungs_cut`` rows are (QA cohort72: LUNG1-003 with a GTV exported as 'Lungs', 75 ml, MLD 0.60 Gy - the table's
note was the only trace, and rp said nothing of it)."""

from __future__ import annotations

import json

from lungai.rp import make_cohort
from rp_helpers import cli_train_fast_lr

NOTE = ("radiomics lungs: segment 'lungs' does not look like the lungs (75 ml, mean -237 HU; both lungs are over "
        "1000 ml and mostly air, below -500 HU): are the lungs given really the lungs?")
SAID = "the lungs of 1 patient may not be the whole lungs (lung_notes"


def _said(err: str) -> list[str]:
    return [line[len("warning: "):] for line in err.splitlines() if line.startswith("warning: ")]


def test_rp_train_validate_predict_say_the_rows_with_lung_notes(tmp_path, capsys, monkeypatch):
    from lungai.cli import main
    from note_helpers import notes_made

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = make_cohort(60, seed=2).table
    table["lung_notes"] = [""] * 3 + [NOTE] + [""] * (len(table) - 4)
    table.to_csv(tmp_path / "t.csv", index=False)
    case = table["case"][3]
    made = notes_made(monkeypatch)
    assert cli_train_fast_lr(tmp_path / "t.csv", tmp_path / "m") == 0
    said = [t for t in _said(capsys.readouterr().err) if SAID in t]
    assert len(said) == 1 and said[0].startswith(f"training table: {SAID}, e.g. {case}): "), said
    assert "re-run lungai cohort" in said[0] and "and the model is trained on them as they are" in said[0], said
    note = next(n for n in made if str(n) == said[0])
    assert case not in note.without_ids and "(lung_notes)" in note.without_ids, note.without_ids
    assert said[0] in json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))["warnings"]
    ext = make_cohort(40, seed=31).table                 # other patients: an external validation
    ext["lung_notes"] = [""] * 3 + [NOTE] + [""] * (len(ext) - 4)
    ext.to_csv(tmp_path / "ext.csv", index=False)
    model = str(tmp_path / "m")
    for what, command in (("validation table", ["validate", model, str(tmp_path / "ext.csv"), "-o", str(tmp_path / "v")]),
                          ("patients table", ["predict", model, str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv")])):
        assert main(["rp", *command]) == 0
        said = [t for t in _said(capsys.readouterr().err) if t.startswith(f"{what}: {SAID}")]    # the card's: its own
        assert len(said) == 1, (command, said)
