"""``ivh_auc`` has no IBSI-1 reference value: ``lungai radiomics`` / ``radiomics-batch`` say so in a note (and the
settings sidecar's ``ibsi_reference``); ``lungai demo --params ibsi-*`` and ``lungai cohort --params ibsi-*`` say it
too, once, with the same text (:func:`lungai.radiomics.settings.unverified_ibsi_note`) - QA radfollow72."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from cohort_helpers import export, said_notes  # noqa: F401 - export: the module's fixture
from lungai.radiomics import load_params

NOTE = "ivh_auc has no IBSI-1 reference value"


@pytest.fixture(scope="module")
def phantom():
    """A small synthetic CT with its tumour and lung label map (1 right, 2 left), as the demo's tests build it."""
    from io_helpers import sample_phantom_images

    return sample_phantom_images((64, 64, 24))[:3]


def test_the_demos_ibsi_radiomics_note_the_feature_without_a_reference_value(phantom, tmp_path):
    """QA radfollow72: ``lungai demo --params ibsi-c`` wrote ivh_auc among the IBSI-1-verified values without a word.
    Now summary.json's radiomics notes hold the note of ``lungai radiomics`` - the console says it ("note: radiomics
    ..."), and the report - once; a pyradiomics parameter set: no such note.  (An IBSI configuration C parameter file
    of the intensity-volume class alone: the part of ibsi-c that holds ivh_auc, quick.)"""
    from lungai.demo.pipeline import _radiomics
    from lungai.radiomics.settings import unverified_ibsi_note
    from lungai.report.html import radiomics_notes

    ct, tumour, lungs = phantom
    params = tmp_path / "ibsi_c_ivh.yaml"
    params.write_text("lungai:\n  ibsi: C\nfeatureClass:\n  intensityvolume: []\n", encoding="utf-8")
    out = tmp_path / "demo"
    out.mkdir()
    info = _radiomics(out, ct, tumour, lungs, str(params), case="P1")[1]
    notes = [n for n in radiomics_notes(info) if NOTE in n]
    assert notes == [unverified_ibsi_note(load_params(str(params), image_types=["Original"]))], info["notes"]
    long = pd.read_csv(out / "radiomics_long.csv")
    assert ((long.feature_class == "ivh") & (long.feature == "auc")).any(), "ivh_auc not computed"
    plain = tmp_path / "plain.yaml"
    plain.write_text("featureClass:\n  firstorder: []\n", encoding="utf-8")
    (tmp_path / "demo2").mkdir()
    assert not [n for n in radiomics_notes(_radiomics(tmp_path / "demo2", ct, tumour, lungs, str(plain),
                                                      case="P1")[1]) if NOTE in n]


def test_cohort_with_an_ibsi_preset_notes_the_feature_without_a_reference_value(export, tmp_path):  # noqa: F811
    """QA radfollow72: ``lungai cohort --params ibsi-a`` recorded ivh_auc in rp_table.settings.json's ibsi_reference
    but said nothing.  Now the note of ``lungai radiomics-batch`` is said once (an InputCheckNote: "note: ..." on
    stderr), naming the sidecar.  (P1 of the synthetic export, its GTV and lungs from its RTSTRUCT; the
    intensity-volume class alone.)"""
    from lungai.dicom.cohort import run_cohort

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1")
    out = tmp_path / "out"
    with said_notes() as said:
        assert run_cohort(root, out, load_params("ibsi-a", feature_classes=["intensityvolume"]), workers=0).done \
            == ["P1"]
    notes = [n for n in said if NOTE in n]
    assert len(notes) == 1 and notes[0].startswith("note: ivh_auc has no IBSI-1 reference value"), said
    assert "rp_table.settings.json: ibsi_reference" in notes[0], notes
    doc = json.loads((out / "rp_table.settings.json").read_text(encoding="utf-8"))
    assert doc["ibsi_reference"]["without_reference_value"] == ["ivh_auc"], doc["ibsi_reference"]
