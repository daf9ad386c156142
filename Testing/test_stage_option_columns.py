"""The EHR options of ``lungai stage cv`` / ``train`` on the real NSCLC-Radiogenomics table: a column named by both
``--drop`` and ``--keep-column`` is refused (QA stagefollow70: the drop silently won), and a refusal's "columns are:"
list gives the table's columns as read - the quit year the user wrote, not 'Years since quitting smoking', which
lungai derives (QA stagefollow70: the derived column was listed as the table's, the quit year was not)."""

from __future__ import annotations

import warnings

import pytest

from lungai.errors import InputError
from lungai.fusion.data import load_cohort
from stage_helpers import stage_cli

pytestmark = pytest.mark.shared_data

STAGE_FROM = ["Pathological T stage", "Pathological N stage", "Pathological M stage"]


@pytest.fixture()
def ehr(shared_data):
    return shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"


def _load(ehr, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_cohort(ehr=ehr, **kw)


@pytest.mark.parametrize("drop, keep", [("Pack Years", "Pack Years"), ("pack years", "Pack Years"),
                                        ("Quit Smoking Year", "quit smoking year")])
def test_a_column_both_dropped_and_kept_is_refused_naming_both_options(ehr, drop, keep):
    with pytest.raises(InputError, match=r"a column is named by both --drop and --keep-column \('") as err:
        _load(ehr, stage_from=STAGE_FROM, drop_columns=["Histology", drop], keep_columns=[keep])
    header = "Pack Years" if "pack" in drop.lower() else "Quit Smoking Year"
    assert f"({header!r}): --drop leaves it out of the features, --keep-column keeps it as a feature" in str(err.value)
    assert err.value.fix == (f"give one of the two for each: --drop {header!r} to leave it out, or --keep-column "
                             f"{header!r} to keep it")


def test_drop_and_keep_of_different_columns_still_load(ehr):
    cohort = _load(ehr, stage_from=STAGE_FROM, drop_columns=["Pack Years"], keep_columns=["Patient affiliation"])
    assert "Pack Years" in cohort.report["dropped_columns"]


def test_cli_refuses_drop_and_keep_of_one_column_before_training(ehr, tmp_path, capsys):
    assert stage_cli(["train", "--ehr", ehr, "--stage-from", ",".join(STAGE_FROM), "--modalities", "ehr",
                      "--drop", "Pack Years", "--keep-column", "Pack Years", "-o", tmp_path / "m"]) != 0
    assert "named by both --drop and --keep-column ('Pack Years')" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def _columns_listed(text):
    return text.split("columns are: ", 1)[1]


@pytest.mark.parametrize("case", ["label", "unknown-drop", "stage-from"])
def test_refusals_list_the_tables_columns_as_read_and_the_derived_one_apart(ehr, case):
    kw = {"label": dict(label="Stage"),
          "unknown-drop": dict(stage_from=STAGE_FROM, drop_columns=["Pack Yrs"]),
          "stage-from": dict(stage_from=["Pathological T stage", "Pathological N stage", "M stage"])}[case]
    with pytest.raises(InputError) as err:
        _load(ehr, **kw)
    listed = _columns_listed(err.value.fix)
    assert "Quit Smoking Year" in listed and "Patient affiliation" in listed
    assert listed.index("Pack Years") < listed.index("Quit Smoking Year") < listed.index("%GG")   # the table's order
    read = listed.split("; lungai derives", 1)
    assert "Years since quitting smoking" not in read[0]
    assert read[1].startswith(" 'Years since quitting smoking' (from 'Quit Smoking Year')")
