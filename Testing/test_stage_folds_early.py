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
