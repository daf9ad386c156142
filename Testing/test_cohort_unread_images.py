"""NIfTI / NRRD / MHA images under a DICOM export are named, never passed over without a word (QA newuser66).

QA on the real data: ``lungai cohort ../shared/data/nsclc_whole_ct -o out --clinical c.csv`` - a folder with both
NSCLC patients, LUNG1-003 as DICOM CT + RTSTRUCT and LUNG1-002 as ``nifti/LUNG1-002_ct.nii.gz`` + labels - processed
LUNG1-003 alone ("1 patient processed"), said nothing of the 4 NIfTI files it did not read, and called LUNG1-002's
clinical row "not in the export (no imaging)" with its CT right there; ``lungai dicom-scan`` listed LUNG1-003 alone,
and a folder of NIfTI files only was refused as holding "no DICOM CT, RTSTRUCT or RTDOSE" with the fix "give the folder
of the treatment-planning export" - nothing a NIfTI user can follow.  Now each command names the image files it does
not read, says a patient whose CT is one of them is not in its result, and gives the command that takes them
(``lungai radiomics-batch`` with a manifest)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from cohort_helpers import PARAMS, said_notes
from dicom_helpers import small_phantom


def _nifti_patient(folder: Path, name: str = "P9") -> list[Path]:
    """A NIfTI CT and its label map, as a converted patient lies beside a DICOM export."""
    from lungai.io.write import write_image

    folder.mkdir(parents=True, exist_ok=True)
    ct = sitk.GetImageFromArray(np.full((6, 8, 8), -800, np.int16))
    labels = sitk.GetImageFromArray(np.zeros((6, 8, 8), np.uint8))
    return [write_image(ct, folder / f"{name}_ct.nii.gz"), write_image(labels, folder / f"{name}_labels.nii.gz")]


def _mixed_export(root: Path) -> Path:
    from lungai.dicom.synthetic import write_rt_study

    write_rt_study(root / "dicom", small_phantom(7), "P1", dose=None)
    _nifti_patient(root / "nifti")
    return root


def _said(text: str) -> None:
    assert "nifti/P9_ct.nii.gz" in text and "nifti/P9_labels.nii.gz" in text, text
    assert "2 image files" in text and "not DICOM" in text, text
    assert "lungai radiomics-batch" in text, text      # the command that takes them


def test_cohort_planning_names_the_nifti_images_it_does_not_read(tmp_path):
    from lungai.dicom.cohort import plan_cohort
    from lungai.errors import InputNote

    root = _mixed_export(tmp_path / "export")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs, inventory = plan_cohort(root)
    assert [j.patient_id for j in jobs] == ["P1"]
    said = [str(w.message) for w in caught if issubclass(w.category, InputNote) and "image file" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    _said(said[0])
    assert "not in the cohort" in said[0], said[0]


def test_a_folder_of_nifti_images_only_is_refused_with_the_command_that_takes_them(tmp_path, capsys):
    from lungai.cli import main

    root = tmp_path / "export"
    _nifti_patient(root / "nifti")
    for argv in (["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "0"], ["dicom-scan", str(root)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "no DICOM" in err, err
        _said(err)
    assert not (tmp_path / "out").exists()


def test_dicom_scan_names_the_nifti_images_beside_the_export(tmp_path, capsys):
    from lungai.cli import main

    root = _mixed_export(tmp_path / "export")
    assert main(["dicom-scan", str(root)]) == 0
    captured = capsys.readouterr()
    assert "P1: CT" in captured.out, captured.out
    _said(captured.err)


def test_the_clinical_row_of_a_nifti_patient_is_not_said_to_have_no_imaging(tmp_path, capsys):
    from lungai.dicom.cohort import run_cohort

    root = _mixed_export(tmp_path / "export")
    clinical = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["P1", "P9", "P7"], "clin_age_years": [61, 70, 55],
                  "rp_grade2": [1, 0, 0]}).to_csv(clinical, index=False)
    with said_notes() as said:     # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        summary = run_cohort(root, tmp_path / "out", PARAMS, clinical=clinical, workers=0)
    assert not summary.failed
    out = "\n".join(said)
    line = next(x for x in out.splitlines() if "not in the export" in x)
    # P7 has no file at all: no imaging; P9's CT is a NIfTI file under the root that cohort does not read
    assert "no imaging): P7" in line, out
    assert "P9" in out and "nifti/P9_ct.nii.gz" in out, out
    p9 = next(x for x in out.splitlines() if "P9" in x and "note:" in x)
    assert "no imaging" not in p9 and "not DICOM" in p9, p9


def _lungai_outputs(root: Path) -> dict:
    """lungai's own results under the export, recorded as the commands record them (lungai.io.outputs.record_outputs):
    a cohort's -o folder (patients/P1/tumour.nii.gz, lungs.nii.gz, listed in its marker above them) and a segment
    result folder (tumor.nii.gz, uncertainty.nii.gz)."""
    from lungai.io.outputs import record_outputs

    cohort = root / "cohort_out"
    masks = _nifti_patient(cohort / "patients" / "P1", "P1")
    (masks[0].rename(cohort / "patients" / "P1" / "lungs.nii.gz"), masks[1].rename(cohort / "patients" / "P1" /
                                                                                   "tumour.nii.gz"))
    (cohort / "patients.csv").write_text("patient_id\nP1\n")
    record_outputs(cohort, "cohort", [cohort / "patients", cohort / "patients.csv"])
    seg = root / "seg_P1"
    seg_files = _nifti_patient(seg, "x")
    (seg_files[0].rename(seg / "tumor.nii.gz"), seg_files[1].rename(seg / "uncertainty.nii.gz"))
    record_outputs(seg, "segment", [seg / "tumor.nii.gz", seg / "uncertainty.nii.gz"])
    return {"cohort": cohort, "seg": seg}


def test_lungais_own_results_under_the_export_are_not_called_a_patients_images(tmp_path, capsys):
    """QA newfollow66 (LUNG1-003's export holding the -o folder of an earlier ``lungai cohort export/LUNG1-003 -o
    export/cohort_out``): ``lungai dicom-scan export`` said "2 image files under export are not DICOM and not read
    (cohort_out/patients/LUNG1-003/lungs.nii.gz, .../tumour.nii.gz) ... a patient whose CT is one of them is not
    listed" - lungai's own masks called a patient's unread CT.  Images a lungai marker lists, unchanged, are left
    out of the note (dicom-scan, cohort's planning and its clinical rows); a user's NIfTI patient is still named,
    and so is a recorded file the user replaced since."""
    import os

    from lungai.cli import main
    from lungai.dicom.cohort import plan_cohort
    from lungai.errors import InputNote

    root = _mixed_export(tmp_path / "export")
    _lungai_outputs(root)
    assert main(["dicom-scan", str(root)]) == 0
    err = capsys.readouterr().err
    _said(err)
    assert "cohort_out" not in err and "seg_P1" not in err, err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan_cohort(root)
    said = [str(w.message) for w in caught if issubclass(w.category, InputNote) and "image file" in str(w.message)]
    assert len(said) == 1 and "cohort_out" not in said[0], said
    _said(said[0])
    replaced = root / "cohort_out" / "patients" / "P1" / "tumour.nii.gz"   # the user's own file now: named
    st = replaced.stat()
    os.utime(replaced, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert main(["dicom-scan", str(root)]) == 0
    err = capsys.readouterr().err
    assert "3 image files" in err and "cohort_out/patients/P1/tumour.nii.gz" in err, err
    assert "lungs.nii.gz" not in err, err


def test_only_lungais_own_results_make_no_note(tmp_path):
    from lungai.dicom.discover import files_under, unread_images_note
    from lungai.dicom.synthetic import write_rt_study

    root = tmp_path / "export"
    write_rt_study(root / "dicom", small_phantom(7), "P1", dose=None)
    _lungai_outputs(root)
    assert unread_images_note(files_under(root), root, "cohort") is None
