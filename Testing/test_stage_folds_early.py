"""Too few patients per class for ``stage cv``'s folds or ``stage train``'s inner CV: refused while the EHR table's
labels are read, before torch, MONAI, torch-geometric, skops and the RNA matrix are loaded.

QA stage72: ``stage cv --folds 40`` on NSCLC-Radiogenomics (classes I 99, II 34, III-IV 29) said "too few patients per
class for 40-fold CV" only after the whole cohort was read - 10.4 s of an idle shared 2-core machine, 70-79 s of a
loaded one -, ``stage cv --inner-folds 25`` after 22.2 s and ``stage train --inner-folds 30`` after 20.2 s, though the
EHR table alone says it (now 4.5 s, 7.5 s and 4.2 s).
"""

from __future__ import annotations

import pandas as pd
import pytest

from lungai.errors import InputError

# the heavy modules a refusal from the EHR labels must not wait for (scikit-learn's splitter may be imported: the
# inner folds are those of the run)
HEAVY = ("torch", "monai", "torch_geometric", "skops")


def _ehr(path):
    """An EHR table of 16 labelled patients: I 6, II 6, III 4 (and one unlabelled)."""
    n = 17
    pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "age": range(50, 50 + n),
                  "stage": ["I"] * 6 + ["II"] * 6 + ["III"] * 4 + ["N/A"]}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("args, says, fix", [
    (["cv", "--folds", "5"], "too few patients per class for 5-fold CV: {'III': 4} (each class needs >= 5)",
     "use fewer folds (--folds 4)"),
    (["cv", "--folds", "2", "--inner-folds", "3"],
     "too few patients per class for the 3-fold inner CV: class 'III' has 2 patients in the training part of outer "
     "fold 1 of 2", "use --inner-folds 2 (the largest that fits)"),
    (["train", "--inner-folds", "5"], "the smallest class has 4 patients, too few for the 5-fold inner CV",
     "use --inner-folds 4"),
])
def test_too_few_patients_per_class_refused_before_torch(tmp_path, args, says, fix):
    from test_cli_startup import _heavy_at_refusal

    ehr = _ehr(tmp_path / "ehr.csv")
    rna = tmp_path / "rna.csv"
    rna.write_text("gene,P000\nG1,not read\n")       # never read: the refusal comes first
    code, err, imported = _heavy_at_refusal(["stage", *args[:1], "--ehr", str(ehr), "--rna", str(rna), "--label",
                                             "stage", *args[1:], "-o", "out"], tmp_path, heavy=HEAVY)
    assert code == 2 and says in err and fix in err and "How to fix" in err, err
    assert "reading the EHR table's labels" in err and "loading torch" not in err, err
    assert imported == [], (args, imported, err)
    assert not (tmp_path / "out").exists()


def _args(tmp_path, *extra):
    from lungai.cli import build_parser

    return build_parser().parse_args(["stage", "cv", "--ehr", str(_ehr(tmp_path / "ehr.csv")), "--label", "stage",
                                      "-o", str(tmp_path / "out"), *extra])


def test_the_inner_folds_are_checked_early_only_where_an_inner_cv_runs(tmp_path):
    """One model with one grid point (--baselines none --fusion-grid weighted) runs no inner CV: not refused for its
    rare class (the run's own rule, lungai.fusion.cv.cross_validate); with a choice it is, as the run would."""
    from lungai.fusion.workflows import check_labels_early

    check_labels_early(_args(tmp_path, "--folds", "2", "--inner-folds", "3", "--baselines", "none",
                             "--fusion-grid", "weighted"), "cv")
    check_labels_early(_args(tmp_path, "--folds", "2", "--inner-folds", "2"), "cv")
    for extra in (("--baselines", "none"), ("--fusion-grid", "weighted"), ()):
        with pytest.raises(InputError, match="3-fold inner CV"):
            check_labels_early(_args(tmp_path, "--folds", "2", "--inner-folds", "3", *extra), "cv")


def _ehr_one_in_iii(path):
    """An EHR table of 13 labelled patients: I 6, II 6, III 1."""
    pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(13)], "age": range(50, 63),
                  "stage": ["I"] * 6 + ["II"] * 6 + ["III"]}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("inner, need", [
    ("1", "stage train needs >= 2 patients in every class, also with --inner-folds 1 (no inner CV)"),
    ("3", "stage train needs >= 2 patients in every class, and >= 3 for the 3-fold inner CV"),
])
def test_train_with_a_class_of_one_patient_says_what_train_needs(tmp_path, inner, need):
    """QA stagefollow72: ``stage train --inner-folds 1`` with a class of one patient said "too few patients per class
    for 2-fold CV ... (a class of one patient fits no CV ...)" - there is no CV with --inner-folds 1.  Now the refusal
    says what ``stage train`` needs, with the --inner-folds given, and how to fix it."""
    from lungai.cli import build_parser
    from lungai.fusion.workflows import check_labels_early

    args = build_parser().parse_args(["stage", "train", "--ehr", str(_ehr_one_in_iii(tmp_path / "ehr.csv")),
                                      "--label", "stage", "--inner-folds", inner, "-o", str(tmp_path / "out")])
    with pytest.raises(InputError) as e:
        check_labels_early(args, "train")
    said = str(e.value) + " " + str(getattr(e.value, "fix", ""))
    assert "too few patients per class to train a model: {'III': 1}" in said and need in said, said
    assert "fold CV" not in said.replace("inner CV", ""), said
    assert "merge rare classes (--label-groups) or add patients" in said, said


@pytest.mark.parametrize("command", ["cv", "train", "validate"])
def test_stage0_without_stage_from_is_refused_with_the_cheap_checks(tmp_path, command):
    """QA stagefollow72: ``--stage0 exclude`` applies only to the stage group derived by --stage-from; with --label it
    was ignored without a word (the stage-0 patients stayed in).  Now refused by the command line's cheap checks
    (lungai.cli.stage.check_inputs, before pandas and torch), naming both fixes; with --stage-from it is accepted."""
    from lungai.cli import build_parser
    from lungai.cli.stage import check_inputs

    ehr = str(_ehr(tmp_path / "ehr.csv"))
    model = ["--model", str(tmp_path)] if command == "validate" else []
    args = build_parser().parse_args(["stage", command, "--ehr", ehr, "--label", "stage", "--stage0", "exclude",
                                      *model, "-o", str(tmp_path / "out")])
    if command == "validate":
        (tmp_path / "stage_model.json").write_text("{}")
    with pytest.raises(InputError) as e:
        check_inputs(args, command)
    said = str(e.value) + " " + str(getattr(e.value, "fix", ""))
    assert "--stage0 exclude is given without --stage-from" in said and "add --stage-from" in said, said
    assert "leave out --stage0" in said, said
    if command == "cv":
        args = build_parser().parse_args(["stage", command, "--ehr", ehr, "--stage-from", "t,n,m", "--stage0",
                                          "exclude", "-o", str(tmp_path / "out")])
        check_inputs(args, command)         # accepted: the stage group is derived (the columns are checked later)
