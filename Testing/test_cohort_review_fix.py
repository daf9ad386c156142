"""The needs-review warning of an automatic tumour names the RTSTRUCT's GTV-like structure without a role and its
``--structure-map`` line, not "contour a GTV in the RTSTRUCT" (QA cohortfollow70)."""

from __future__ import annotations

from dicom_helpers import small_phantom

NAMES = {"gtv": "Tumour_main", "lung_right": "Rt_Lung_Contour", "lung_left": "Lt_Lung_Contour"}


def test_the_review_fix_names_an_unnamed_gtv_and_its_mapping_line(tmp_path):
    from lungai.dicom.cohort import plan_cohort, review_fix
    from lungai.dicom.synthetic import write_rt_study

    write_rt_study(tmp_path / "renamed", small_phantom(7), "P1", dose=None, names=NAMES)
    jobs, _ = plan_cohort(tmp_path / "renamed")
    fix = review_fix(jobs[0].rtstruct)
    assert "contour a GTV" not in fix, fix
    assert fix.startswith("or, if the RTSTRUCT's 'Tumour_main' is the GTV, map it with --structure-map "), fix
    assert "Tumour_main: gtv" in fix, fix
    # mapped (to null: hidden by the user), or no GTV-like structure at all: contour one
    assert review_fix(jobs[0].rtstruct, {"Tumour_main": None}) == "or contour a GTV in the RTSTRUCT"
    write_rt_study(tmp_path / "plain", small_phantom(7), "P1", dose=None, names={"gtv": "Heart_2"})
    jobs, _ = plan_cohort(tmp_path / "plain")
    assert review_fix(jobs[0].rtstruct) == "or contour a GTV in the RTSTRUCT"
    assert review_fix(None).startswith("or export the patient's RTSTRUCT with a contoured GTV")     # none: export one


def test_cohort_says_the_mapping_line_in_its_needs_review_warning(tmp_path, capsys):
    """The warning as ``lungai cohort`` says it: the renamed RTSTRUCT's automatic tumour is flagged for review on
    the small phantom; its fix names 'Tumour_main' and its mapping line, not "contour a GTV in the RTSTRUCT"."""
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study

    write_rt_study(tmp_path / "export", small_phantom(7), "P1", dose=None, names=NAMES)
    assert main(["cohort", str(tmp_path / "export"), "-o", str(tmp_path / "out"), "--workers", "0"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "needs review" in line]
    assert said and all("contour a GTV" not in line for line in said), said
    assert "map it with --structure-map ('Tumour_main: gtv') and run again)" in said[0], said
