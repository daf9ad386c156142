"""``lungai dicom-scan --json FILE`` never replaces a file it did not write (QA inputs70)."""

import hashlib
import json

import pytest
from dicom_helpers import rt_export

from lungai.cli import main


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("scan_json"))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dicom_scan_json_never_replaces_a_file_it_did_not_write(export, tmp_path, capsys):
    """QA inputs70 (a copy of LUNG1-003's export): ``lungai dicom-scan copy --json copy/RTSTRUCT/<rtstruct>.dcm``
    wrote its listing over the patient's RTSTRUCT - the file it had just scanned - and exited 0; ``--json
    lab3.nii.gz`` replaced a label map the same way.  The --json file is checked before the scan, as every output
    file of lungai is: an input, or a file lungai dicom-scan did not write, is refused, nothing written; the
    listing of an earlier run of it is replaced."""
    root = export["P1"]["root"].parent
    rtstruct = export["P1"]["rtstruct"]
    mask = tmp_path / "labels.nii.gz"
    mask.write_bytes(b"a label map of the user's")
    for path, says in ((rtstruct, "already exists and was not written by lungai dicom-scan"),
                       (mask, "already exists and was not written by lungai dicom-scan")):
        before = _digest(path)
        assert main(["dicom-scan", str(root), "--json", str(path)]) == 2
        err = capsys.readouterr().err
        assert says in err and "nothing is overwritten" in err and "How to fix" in err, err
        assert "dicom-scan: 0/" not in err, err          # refused before the scan: no bar
        assert _digest(path) == before, path
    out = tmp_path / "scan.json"
    assert main(["dicom-scan", str(root), "--json", str(out)]) == 0
    assert [d["patient_id"] for d in json.loads(out.read_text(encoding="utf-8"))] == ["P1", "P2", "P3"]
    assert main(["dicom-scan", str(root), "--json", str(out)]) == 0      # its own listing: replaced
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    out.write_text("[]\n", encoding="utf-8")              # edited by the user since: never replaced
    assert main(["dicom-scan", str(root), "--json", str(out)]) == 2
    assert "changed since lungai dicom-scan wrote it" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "[]\n"


def test_dicom_scan_checks_its_structure_map_before_the_scan(export, tmp_path, capsys):
    """QA inputs70: ``lungai dicom-scan LUNG1-003 --structures --structure-map typo.yaml`` scanned the export
    (3.7 s; minutes for a cohort's) and printed its listing before "structure mapping file typo.yaml does not
    exist".  Checked with the arguments now, before the scan."""
    root = export["P1"]["root"].parent
    assert main(["dicom-scan", str(root), "--structures", "--structure-map", str(tmp_path / "typo.yaml")]) == 2
    captured = capsys.readouterr()
    assert "--structure-map" in captured.err and "typo.yaml does not exist" in captured.err, captured.err
    assert "dicom-scan: 0/" not in captured.err and "P1:" not in captured.out, captured


def test_dicom_scan_json_gives_the_structures_roles_as_the_text_does(export, tmp_path, capsys):
    """QA dicomfollow71: ``dicom-scan --structures --json`` listed each RTSTRUCT's structure names without their roles,
    which the text output gives ("GTV (gtv), Lung_R (lung_right), ..."). The JSON keeps ``structures`` (the names) and
    adds ``structure_roles`` {RTSTRUCT: {name: role or null}}, --structure-map applied as in the text."""
    root = export["P1"]["root"].parent
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Lung_L: gtv\n", encoding="utf-8")     # a role given by the map, as the text says it
    for extra, left in (([], "lung_left"), (["--structure-map", str(mapping)], "gtv")):
        out = tmp_path / f"scan{len(extra)}.json"
        assert main(["dicom-scan", str(root), "--structures", "--json", str(out), *extra]) == 0
        text = capsys.readouterr().out
        doc = {d["patient_id"]: d for d in json.loads(out.read_text(encoding="utf-8"))}
        rs = str(export["P1"]["rtstruct"])
        names, roles = doc["P1"]["structures"][rs], doc["P1"]["structure_roles"][rs]
        assert list(roles) == names and "Lung_R" in names and "GTV" in names, roles
        assert roles["Lung_R"] == "lung_right" and roles["Lung_L"] == left and roles["GTV"] in ("gtv", "gtv_primary")
        for name, role in roles.items():     # the text's roles, word for word
            assert f"{name} ({role or 'no role'}" in text, (name, role, text)
