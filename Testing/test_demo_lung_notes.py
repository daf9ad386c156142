"""The demo's report and console say the lung segmentation's notes (summary.json ``lungs.notes``), not only its
warnings: what the lung volumes and dose metrics are of (blank slices left out, airways removed or not)."""

from __future__ import annotations

import SimpleITK as sitk


def _small_sample_with_blank_top():
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    spec = PhantomSpec(shape=(128, 128, 48), spacing=(2.8, 2.8, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    ct = make_phantom(spec, seed=SAMPLE_SEED).ct
    arr = sitk.GetArrayFromImage(ct)
    arr[-3:] = -1024            # three padding slices at the top of the scan, as a scanner's reconstruction leaves
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(ct)
    return out


def test_lung_notes_reach_the_demo_report_and_console():
    from lungai.cli.demo import result_lines
    from lungai.lungs import segment_lungs
    from lungai.report.html import _lungs_and_features

    res = segment_lungs(_small_sample_with_blank_top())
    # summary.json's lungs, as lungai.demo.pipeline records them
    lungs = {"right_lung": float(res.volumes_ml["right_lung"]), "left_lung": float(res.volumes_ml["left_lung"]),
             "notes": res.notes, "cut": res.cut, "warnings": res.warnings}
    notes = [n for n in res.notes if n not in res.warnings]
    assert any("blank slice" in n for n in notes), res.notes      # the padding is said, as a note (not a warning)
    s = {"lungs": lungs, "radiomics": {"key_features": [], "params": "default", "n_features": 0}}
    page = _lungs_and_features(s)
    summary = {"segmentation": {"tumor_volume_ml": 1.0, "confidence": 0.9, "needs_review": False},
               "rp": {"message": "x"}, "stage": {"message": "x"}, "dose": None, "dose_source": "none", "lungs": lungs}
    lines = result_lines(summary)
    import html

    for note in notes:
        assert html.escape(note) in page, note
        assert f"note: {note}" in lines
    assert 'id="lungs-notes"' in page
    for warning in res.warnings:          # a warning is said once, as a warning
        assert f"note: {warning}" not in lines
