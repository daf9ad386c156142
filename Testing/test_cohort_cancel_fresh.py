"""``lungai cohort`` cancelled before any patient finished: nothing to resume, so none of its files is left in a
folder no cohort run had written into - nor the new ``-o`` folder it made (QA cohortfollow71)."""

from __future__ import annotations

import pytest

from cohort_helpers import PARAMS, export, said_notes  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import RESULT, run_cohort


def _cancelled_midway(out, finished=()):
    """A stand-in for run_tasks: the patients' workers wrote part of P1 (and all of the ``finished`` cases) before the
    run was cancelled (Ctrl-C)."""
    def cancelled(desc, fn, items, names, args, is_done, summary, workers, scheduler):
        for case in ("P1", *finished):
            folder = out / "patients" / case
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("lungs.nii.gz", "tumour.nii.gz") + (("features.csv", RESULT) if case in finished else ()):
                (folder / name).write_bytes(b"x")
        raise KeyboardInterrupt

    return cancelled


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_cancelled_before_any_patient_finished_leaves_no_new_output_folder(export, tmp_path, monkeypatch,
                                                                                  workers):
    """QA cohortfollow71 (``lungai cohort LUNG1-003 -o NEW``, Ctrl-C during the first patient): NEW was left with
    settings.key, settings.json, patients.csv, the marker .lungai-cohort and an empty patients/ - nothing a re-run
    resumes.  Now the folder the run made is gone, said with what to do."""
    import lungai.radiomics.cluster as cluster

    out = tmp_path / "new" / "out"
    monkeypatch.setattr(cluster, "run_tasks", _cancelled_midway(out))
    with said_notes() as said, pytest.raises(KeyboardInterrupt):
        run_cohort(export, out, PARAMS, workers=workers)
    assert not (tmp_path / "new").exists(), sorted(p.name for p in out.rglob("*"))
    assert (f"note: cancelled before any patient finished: nothing to resume, so the files this run wrote into {out} "
            "were removed; run the same command again to start it") in said, said


def test_a_users_folder_keeps_its_own_files_and_a_finished_patient_keeps_everything(export, tmp_path, monkeypatch):
    """The user's existing folder (no cohort run in it before): cohort's files go, the folder and the user's own
    files stay.  A run cancelled once a patient finished keeps its files for the resume, as before."""
    import lungai.radiomics.cluster as cluster

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.setattr(cluster, "run_tasks", _cancelled_midway(mine))
    with pytest.raises(KeyboardInterrupt):
        run_cohort(export, mine, PARAMS, workers=0)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    out = tmp_path / "out"
    monkeypatch.setattr(cluster, "run_tasks", _cancelled_midway(out, finished=("P2",)))
    with pytest.raises(KeyboardInterrupt):
        run_cohort(export, out, PARAMS, workers=0)
    assert {"settings.key", "settings.json", "patients.csv", ".lungai-cohort"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in (out / "patients").iterdir()] == ["P2"]       # P1 unfinished: gone; P2 kept to resume
