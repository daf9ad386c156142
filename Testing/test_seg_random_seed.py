"""The random seed of an MC-dropout segmentation is recorded in result.json (QA segout59): the dropout masks, so the
mask, maps and confidence, depend on it (LUNG1 lung1, seed point -21.86,-120.54,-611.5, --method mc-dropout:
--seed 3 1.062 ml, --seed 4 1.016 ml), and a result that does not say which seed made it cannot be reproduced."""


def _mc_model(tmp_path):
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=2, dropout=0.3)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict() for _ in range(2)], {})
    return tmp_path / "m", next(c for c in tiny_cases(4, 0) if c.case_id)


def test_result_json_records_the_mc_dropout_random_seed_and_it_reproduces_the_run(tmp_path):
    import json

    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main

    model, case = _mc_model(tmp_path)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))

    def run(name, *extra):
        out = tmp_path / name
        assert main(["segment", str(ct), "-o", str(out), "--model", str(model), "--whole", "--mc-passes", "3",
                     *extra]) == 0
        return json.loads((out / "result.json").read_text(encoding="utf-8")), out

    def prob(out):
        return sitk.GetArrayFromImage(sitk.ReadImage(str(out / "probability.nii.gz")))

    a, out_a = run("a", "--method", "mc-dropout", "--seed", "3")
    b, out_b = run("b", "--method", "mc-dropout", "--seed", "4")
    again, out_again = run("again", "--method", "mc-dropout", "--seed", str(a["random_seed"]))
    assert a["method"] == "mc-dropout" and a["random_seed"] == 3 and b["random_seed"] == 4
    assert not np.array_equal(prob(out_a), prob(out_b))          # the seed matters ...
    assert np.array_equal(prob(out_a), prob(out_again))          # ... and the recorded one reproduces the run
    for name in ("tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "result.json"):
        assert (out_a / name).read_bytes() == (out_again / name).read_bytes(), name


def test_an_ensemble_result_records_no_random_seed(tmp_path):
    """The ensemble is deterministic (no dropout at inference): its result.json says so with random_seed null."""
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model

    model, case = _mc_model(tmp_path)
    info = segment_tumour(case.image, load_model(model), whole=True, method="ensemble", seed=5).info
    assert info["method"] == "ensemble" and "random_seed" in info and info["random_seed"] is None


def test_a_random_seed_given_to_the_ensemble_is_noted_as_not_used(tmp_path, capsys):
    """QA segout59: `lungai segment --seed 5` with the ensemble gave byte-identical outputs to --seed 0 without a word
    (as --mc-passes given to an ensemble is noted, MC_PASSES_UNUSED_NOTE); the note says how to run MC dropout."""
    import json

    import SimpleITK as sitk

    from lungai.cli import main

    model, case = _mc_model(tmp_path)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case.image, str(ct))

    def notes(name, *extra):
        assert main(["segment", str(ct), "-o", str(tmp_path / name), "--model", str(model), "--whole", *extra]) == 0
        return json.loads((tmp_path / name / "result.json").read_text(encoding="utf-8"))["notes"]

    given = notes("ens5", "--seed", "5")
    assert any("--seed 5 not used" in n and "--method mc-dropout" in n for n in given)
    assert "--seed 5 not used" in capsys.readouterr().out
    assert not any("--seed" in n for n in notes("ens"))                               # not given: nothing to say
    assert not any("--seed" in n for n in notes("mc5", "--method", "mc-dropout", "--mc-passes", "3", "--seed", "5"))
