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
