"""``lungai radiomics --mask FILE --segments NAME ...`` computes the segments named, and refuses a name the mask does
not give - as its help says ("a segment named here that cannot be built is an error").

QA radfind66: ``--mask pyradiomics_lung/lung1_label.nrrd --segments tumor`` computed segment label_1 (107 values),
exit 0: --segments was ignored with --mask; and with LUNG1-002's labels named (``--label tumour=1 --label
right_lung=3 --label left_lung=4 --segments tumour``) both lungs were computed as well, 2 x ~10 s for nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.cli import main


def _case(tmp_path):
    rng = np.random.default_rng(1)
    arr = (rng.normal(0, 30, (12, 30, 30)) - 750).astype(np.int16)
    lab = np.zeros(arr.shape, np.uint8)
    lab[3:9, 4:12, 4:12] = 1          # "tumour"
    lab[3:9, 16:26, 16:26] = 3        # another structure
    arr[lab == 1] = 30
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 2.0))
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "labels.nrrd"))
    return str(tmp_path / "ct.nrrd"), str(tmp_path / "labels.nrrd")


def test_segments_selects_among_the_masks_segments(tmp_path, capsys):
    ct, labels = _case(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", ct, "--mask", labels, "--label", "gtv=1", "--label", "other=3",
                 "--segments", "gtv", "--feature-classes", "firstorder", "-o", str(out)]) == 0
    assert set(pd.read_csv(out)["segment"]) == {"gtv"}
    assert set(pd.read_csv(tmp_path / "out_settings.csv")["segment"]) == {"gtv"}


def test_a_segment_the_mask_does_not_give_is_refused_naming_those_it_gives(tmp_path, capsys):
    ct, labels = _case(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", ct, "--mask", labels, "--segments", "tumor", "--feature-classes", "firstorder",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--segments tumor: no such segment of --mask" in err
    assert "label_1, label_3" in err                     # what the mask gives
    assert "--label tumor=N" in err                       # how to name a label
    assert not out.exists()


def test_without_segments_every_label_is_computed(tmp_path):
    ct, labels = _case(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", ct, "--mask", labels, "--feature-classes", "firstorder", "-o", str(out)]) == 0
    assert set(pd.read_csv(out)["segment"]) == {"label_1", "label_3"}


def _manifest(tmp_path, rows: str):
    ct, labels = _case(tmp_path)
    (tmp_path / "m.csv").write_text("case,image,mask,label,tumour\n" + rows.format(ct=ct, labels=labels),
                                    encoding="utf-8")
    return str(tmp_path / "m.csv")


def _batch(manifest, segment, out) -> int:
    """``lungai radiomics-batch MANIFEST --segments SEGMENT`` (first-order features, no Dask) into ``out``: its exit
    code."""
    return main(["radiomics-batch", manifest, "--workers", "0", "--segments", segment, "--feature-classes",
                 "firstorder", "-o", str(out)])


def test_batch_segments_select_among_a_mask_rows_segments(tmp_path, capsys):
    """QA radfollow66: ``radiomics-batch m.csv --segments tumour`` (pyradiomics lung1/lung2 image + mask rows)
    computed every row's label_1, exit 0: --segments was ignored for ``mask`` rows.  The rule of
    ``lungai radiomics --mask``: the names pick among the mask's segments."""
    m = _manifest(tmp_path, "p1,{ct},{labels},gtv=1;other=3,\np2,{ct},{labels},gtv=1,\n")
    out = tmp_path / "o.csv"
    assert _batch(m, "gtv", out) == 0
    got = pd.read_csv(out)
    assert set(got["segment"]) == {"gtv"}
    assert set(got["case"]) == {"p1", "p2"}


def test_batch_refuses_a_mask_row_giving_none_of_the_segments_named(tmp_path, capsys):
    m = _manifest(tmp_path, "p1,{ct},{labels},gtv=1,\np2,{ct},{labels},,\n")
    out = tmp_path / "o.csv"
    code = _batch(m, "gtv", out)
    assert code != 0
    said = capsys.readouterr()
    text = said.out + said.err + "".join(
        p.read_text() for p in tmp_path.glob("o_errors.csv"))
    assert "--segments gtv: no such segment of case p2's mask" in text
    assert "label_1, label_3" in text
    assert "gtv=N" in text                                # how to name it, in the row's label cell
    assert set(pd.read_csv(out)["segment"]) == {"gtv"}    # the other case went on
    assert set(pd.read_csv(out)["case"]) == {"p1"}


def test_batch_segments_apply_to_mask_and_tumour_rows_alike(tmp_path, capsys):
    """A manifest mixing a mask row and a tumour row: the names apply to both."""
    m = _manifest(tmp_path, "p1,{ct},{labels},tumour=1;other=3,\np2,{ct},,,{labels}#1\n")
    out = tmp_path / "o.csv"
    assert _batch(m, "tumour", out) == 0
    got = pd.read_csv(out)
    assert set(got["segment"]) == {"tumour"}
    assert set(got["case"]) == {"p1", "p2"}


def test_batch_refuses_a_tumour_row_giving_none_of_the_segments_named(tmp_path, capsys):
    """A mixed manifest, ``--segments`` naming a mask row's label only: the tumour row is refused with its case and
    the fix (before: "unknown segment 'gtv'; choose from ...", fix "fix the masks")."""
    m = _manifest(tmp_path, "p1,{ct},{labels},gtv=1,\np2,{ct},,,{labels}#1\n")
    out = tmp_path / "o.csv"
    assert _batch(m, "gtv", out) == 1
    text = (tmp_path / "o_errors.csv").read_text()
    assert "--segments gtv: none is a segment of case p2's tumour / lungs cells" in text
    assert "give the case a mask cell" in text
    assert set(pd.read_csv(out)["case"]) == {"p1"}
