"""`lungai stage` refuses numeric options out of range when the command line is read, naming the option and the
fix - before, `--epochs 0`, `--folds 1`, `--val-fraction 1.5`, `--lr -1` and `--seed -1` crashed with a traceback
after the tables were read, and `--top-k 0` / `-5` was used silently ("top--5")."""

import pytest

from lungai.cli import main

BAD = [
    ("cv", "--epochs", "0", "0 is below 1: give the number of training epochs"),
    ("cv", "--folds", "1", "1 is below 2: give the number of outer CV folds"),
    ("cv", "--inner-folds", "0", "0 is below 1: give the number of inner folds"),
    ("cv", "--val-fraction", "1.5", "1.5 is not in [0, 1): give a fraction"),
    ("cv", "--val-fraction", "-0.1", "-0.1 is not in [0, 1)"),
    ("cv", "--lr", "-1", "-1 is not above 0: give a positive learning rate"),
    ("cv", "--lr", "nan", "'nan' is not a finite number"),
    ("cv", "--seed", "-1", "-1 is below 0: give a seed"),
    ("cv", "--top-k", "0", "0 is below 1: give how many genes to keep"),
    ("train", "--top-k", "-5", "-5 is below 1"),
    ("train", "--patience", "0", "0 is below 1"),
    ("train", "--neighbours", "0", "0 is below 1"),
    ("synth", "--seed", "-3", "-3 is below 0"),
    # QA docs71: --genes 10 crashed with numpy's "Cannot take a larger sample than population" after the CTs were
    # written, --patients 0 wrote an empty cohort and suggested `stage cv` on it
    ("synth", "--genes", "10", "10 is below 15: give the number of genes (>= 15: the planted module's size)"),
    ("synth", "--patients", "0", "0 is below 3: give the number of patients (>= 3: one per stage class)"),
    ("predict", "--max-missing-genes", "1.5", "1.5 is not in [0, 1]"),
]


@pytest.mark.parametrize("command,option,value,message", BAD)
def test_stage_numeric_options_out_of_range_are_refused_by_name(tmp_path, capsys, command, option, value, message):
    argv = ["stage", command, option, value, "-o", str(tmp_path / "out")]
    if command in ("predict", "validate"):
        argv += ["--model", str(tmp_path / "model")]
    if command in ("cv", "train"):
        argv += ["--ehr", str(tmp_path / "ehr.csv"), "--label", "stage"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {message}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_stage_numeric_options_in_range_are_read_as_given():
    from lungai.cli import build_parser

    a = build_parser().parse_args(["stage", "cv", "-o", "x", "--epochs", "1", "--folds", "2", "--inner-folds", "1",
                                   "--val-fraction", "0", "--lr", "1e-4", "--seed", "0", "--top-k", "1"])
    assert (a.epochs, a.folds, a.inner_folds, a.val_fraction, a.lr, a.seed, a.top_k) == (1, 2, 1, 0.0, 1e-4, 0, 1)
    assert build_parser().parse_args(["stage", "predict", "--model", "m", "-o", "x", "--max-missing-genes", "1"]
                                     ).max_missing_genes == 1.0


# (patients per class I / II / III of a `stage synth --patients N` cohort, the --folds / --inner-folds its last line
# should name: "" = the defaults, None = no CV fits)
SYNTH_COHORTS = [(3, None), (4, " --folds 2 --inner-folds 1"), (6, " --folds 2 --inner-folds 1"),
                 (9, " --folds 3 --inner-folds 2"), (12, " --folds 4"), (15, ""), (90, "")]


@pytest.mark.parametrize("patients,fitted", SYNTH_COHORTS)
def test_stage_synth_suggests_a_cv_that_fits_its_cohort(tmp_path, patients, fitted):
    """QA optsfollow71: `stage synth --patients 3` (one patient per class) printed "next: lungai stage cv ..." with
    the default 5 outer / 3 inner folds, which `stage cv` refuses below 15 patients ("too few patients per class").
    The suggestion now fits the cohort written - with --folds / --inner-folds where the defaults do not - or says why
    none does; checked here against `stage cv`'s own checks (check_labels, check_inner_labels) on its labels."""
    import numpy as np
    import pandas as pd

    from lungai.fusion.cv import check_inner_labels, check_labels
    from lungai.fusion.data import Cohort
    from lungai.fusion.synthetic import CLASSES
    from lungai.fusion.workflows import synth_next_step

    # the labels make_cohort writes for N patients
    labels = [CLASSES[k] for k in np.repeat(np.arange(3), int(np.ceil(patients / 3)))[:patients]]
    paths = {"ehr": tmp_path / "ehr.csv", "rna": tmp_path / "rna.csv", "ct": tmp_path / "manifest.csv"}
    line = synth_next_step(paths, tmp_path, pd.Series(labels).value_counts())
    if fitted is None:
        assert line.startswith("next: no `lungai stage cv` fits this cohort: classes I, II, III have 1 patient each")
        assert "--patients 6" in line and "lungai stage cv --ehr" not in line
        return
    assert line.startswith(f"next: lungai stage cv --ehr {paths['ehr']} "), line
    assert f"--single-modality{fitted}" in line and ("too few for the default" in line) == bool(fitted), line
    folds = int(line.split("--folds ")[1].split()[0]) if "--folds" in line else 5
    inner = int(line.split("--inner-folds ")[1].split()[0]) if "--inner-folds" in line else 3
    ids = [f"P{i}" for i in range(patients)]
    cohort = Cohort(ids=ids, ehr=pd.DataFrame(index=ids), rna=None, ct={}, labels=pd.Series(labels, index=ids))
    classes = check_labels(cohort, folds)                     # each raises InputError where the CV would not run
    check_inner_labels(cohort, classes, folds, inner, seed=0)


def test_stage_synth_says_why_no_cv_fits_a_cohort_of_one_patient_per_class(tmp_path, capsys):
    from lungai.cli import main

    assert main(["stage", "synth", "-o", str(tmp_path / "syn"), "--patients", "3", "--genes", "15"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("next: no `lungai stage cv` fits this cohort") and "at least 2 per class" in last, last


@pytest.mark.parametrize("counts,fix", [((1, 1, 1), "(a class of one patient fits no CV: each class needs >= 2) merge"),
                                        ((1, 4, 4), "(a class of one patient fits no CV"),
                                        ((2, 3, 3), "use fewer folds (--folds 2), merge"),
                                        ((4, 5, 9), "use fewer folds (--folds 4), merge")])
def test_stage_cv_suggests_fewer_folds_only_where_some_fit(counts, fix):
    """QA optsfollow71: `stage cv` on a cohort with a class of one patient (`stage synth --patients 3`) said "use
    fewer folds (--folds 2)", which it refuses the same way; it now says no fold count fits such a class."""
    import pandas as pd

    from lungai.errors import InputError
    from lungai.fusion.cv import check_labels
    from lungai.fusion.data import Cohort

    labels = [c for c, n in zip(("I", "II", "III"), counts) for _ in range(n)]
    ids = [f"P{i}" for i in range(len(labels))]
    cohort = Cohort(ids=ids, ehr=pd.DataFrame(index=ids), rna=None, ct={}, labels=pd.Series(labels, index=ids))
    with pytest.raises(InputError, match="too few patients per class for 5-fold CV") as e:
        check_labels(cohort, 5)
    assert fix in e.value.fix and "--label-groups" in e.value.fix, e.value.fix
    if "--folds" in fix:                          # the folds suggested are accepted
        check_labels(cohort, int(fix.split("--folds ")[1].split(")")[0]))
