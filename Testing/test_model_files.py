"""Every model-file format of the project loads only allow-listed types (lungai.model_files):
crafted skops files naming builtins.exec / eval / os.system and pickled weights disguised as
safetensors are refused with a clear error by every loader (RP, stage, segmentation)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import torch

from lungai.errors import InputError
from lungai.model_files import SKLEARN_EXTRA_TYPES, load_safetensors, load_skops
from rp_helpers import rp_cohort, rp_model_dir  # noqa: F401 - fixtures

CODE = {"exec": exec, "eval": eval, "os.system": os.system}


def _crafted(path, payload) -> None:
    """A skops file whose content names a callable that runs code."""
    sio.dump({"encoder": None, "mlp": None, "x": payload}, path)


@pytest.mark.parametrize("name", list(CODE))
def test_shared_skops_loader_refuses_code(tmp_path, name):
    path = tmp_path / "m.skops"
    _crafted(path, CODE[name])
    with pytest.raises(InputError, match="could run code") as err:
        load_skops(path)
    assert ("posix.system" if name == "os.system" else f"builtins.{name}") in str(err.value)
    assert "unknown sources" in str(err.value)


def test_allow_list_is_exact_names_not_prefixes(tmp_path):
    from sklearn.linear_model import LogisticRegression

    assert all(t.count(".") >= 1 and not t.endswith(".") for t in SKLEARN_EXTRA_TYPES)
    path = tmp_path / "ok.skops"
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    sio.dump(LogisticRegression().fit(X, y), path)
    assert load_skops(path).predict(X).shape == (20,)
    _crafted(path, exec)
    with pytest.raises(InputError, match="builtins.exec"):
        load_skops(path, trusted=["builtins."])           # a prefix does not trust anything
    with pytest.raises(InputError, match="not a readable skops file"):
        (tmp_path / "junk.skops").write_bytes(b"not a zip")
        load_skops(tmp_path / "junk.skops")


def test_safetensors_loader_refuses_pickled_weights(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.safetensors")      # a pickle, renamed
    with pytest.raises(InputError, match="not a safetensors file"):
        load_safetensors(tmp_path / "w.safetensors")
    with pytest.raises(InputError, match="missing"):
        load_safetensors(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name", list(CODE))
def test_rp_loader_refuses_code(rp_model_dir, tmp_path, name):
    from lungai.rp.model_io import load_model

    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(rp_model_dir / "model_card.json", bad / "model_card.json")
    bundle, _ = load_model(rp_model_dir)
    sio.dump({"pipeline": bundle["pipeline"], "x": CODE[name]}, bad / "model.skops")
    with pytest.raises(InputError, match="could run code"):
        load_model(bad)


def _rp_bundle_damage(bundle) -> dict:
    """Allow-listed skops content (no code, only trusted types) of a wrong structure, and what the loader says."""
    import numpy as np

    pipe = bundle["pipeline"]
    return {"a list": ([1, 2, 3], "holds a list, not the model lungai saves"),
            "a foreign dict": ({"foo": 1}, r"holds a dict with the keys \['foo'\]"),
            "a key missing": ({"pipeline": pipe, "bootstrap": []}, "holds a dict with the keys"),
            "no pipeline": ({"pipeline": [1], "bootstrap": [], "baseline": bundle["baseline"]},
                            "its pipeline is a list"),
            "bootstrap of numbers": ({"pipeline": pipe, "bootstrap": [1, 2], "baseline": bundle["baseline"]},
                                     "its bootstrap ensemble is not a list"),
            "baseline too short": ({"pipeline": pipe, "bootstrap": [], "baseline": bundle["baseline"][..., :2]},
                                   "its explanation baseline"),
            "baseline text": ({"pipeline": pipe, "bootstrap": [], "baseline": "mean"}, "its explanation baseline"),
            "baseline NaN": ({"pipeline": pipe, "bootstrap": [], "baseline": np.full_like(bundle["baseline"], np.nan)},
                             "its explanation baseline")}


@pytest.mark.parametrize("damage", ["a list", "a foreign dict", "a key missing", "no pipeline", "bootstrap of numbers",
                                    "baseline too short", "baseline text", "baseline NaN"])
def test_rp_loader_refuses_an_allow_listed_file_of_another_structure(rp_model_dir, rp_cohort, tmp_path, damage):
    """QA: `sio.dump([1, 2, 3], model.skops)` (only trusted types) passed the type check and stopped rp predict /
    validate with TypeError / KeyError tracebacks.  The bundle is checked at load: an InputError naming the file
    with the re-train fix; the commands exit 2 without a traceback."""
    from lungai.cli import main
    from lungai.rp.model_io import load_model

    bundle, _ = load_model(rp_model_dir)
    content, message = _rp_bundle_damage(bundle)[damage]
    bad = tmp_path / "bad"
    shutil.copytree(rp_model_dir, bad)
    sio.dump(content, bad / "model.skops")
    with pytest.raises(InputError, match=message) as err:
        load_model(bad)
    assert str(bad / "model.skops") in err.value.problem and "lungai rp train" in err.value.fix
    if damage == "a list":
        table = tmp_path / "patients.csv"
        rp_cohort.table.head(20).to_csv(table, index=False)
        for cmd in (["predict", bad, table, "-o", tmp_path / "p.csv"],
                    ["validate", bad, table, "--outcome", rp_cohort.outcome, "-o", tmp_path / "v"]):
            assert main(["rp"] + [str(a) for a in cmd]) == 2


@pytest.fixture(scope="module")
def stage_model(tmp_path_factory):
    from lungai.fusion import model_io
    from lungai.fusion.data import load_cohort
    from lungai.fusion.pipeline import FusionConfig, FusionPipeline
    from lungai.fusion.synthetic import make_cohort

    out = tmp_path_factory.mktemp("stage_files")
    paths = make_cohort(out / "c", n=24, seed=3, n_genes=30, module_size=6, ct_shape=(48, 48, 24),
                        ct_spacing=(6.0, 6.0, 5.0))
    cohort = load_cohort(paths["ehr"], paths["rna"], None, label="stage")
    classes = ["I", "II", "III"]
    pipe = FusionPipeline(FusionConfig(epochs=2, patience=100, top_k=30, neighbours=4, seed=0), classes).fit(cohort)
    return model_io.save(out / "m", pipe)


@pytest.mark.parametrize("name", list(CODE))
def test_stage_loader_refuses_code(stage_model, tmp_path, name):
    from lungai.fusion import model_io

    model_io.load(stage_model)                         # the genuine folder loads
    parts = sorted(p.name for p in stage_model.glob("*.skops"))
    assert "ehr_encoder.skops" in parts
    for part in parts:                                 # every skops file of the folder
        bad = tmp_path / f"bad_{part}"
        shutil.copytree(stage_model, bad)
        _crafted(bad / part, CODE[name])
        with pytest.raises(InputError, match="could run code"):
            model_io.load(bad)


def test_stage_and_seg_loaders_refuse_pickled_weights(stage_model, tmp_path):
    from lungai.fusion import model_io
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import default_model_dir

    bad = tmp_path / "stage"
    shutil.copytree(stage_model, bad)
    torch.save({"x": torch.zeros(1)}, bad / "fusion.safetensors")
    with pytest.raises(InputError, match="not a safetensors file"):
        model_io.load(bad)
    seg = tmp_path / "seg"
    shutil.copytree(default_model_dir(), seg)
    member = json.loads((seg / "model.json").read_text(encoding="utf-8"))["member_files"][0]
    torch.save({"x": torch.zeros(1)}, seg / member)
    with pytest.raises(InputError, match="not a safetensors file"):
        load_model(seg)


def _damage_tensors(folder, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "fusion.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "fusion.safetensors"))


def _first_weight(tensors) -> str:
    return next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point())


def _set_first(tensors, value) -> None:
    t = tensors[_first_weight(tensors)].clone()
    t.view(-1)[0] = value
    tensors[_first_weight(tensors)] = t


EDGES = "graph.edge_index"


def _set_edge(tensors, node) -> None:
    """The first edge's first node number set to ``node`` (QA: 10**9 or -5 stopped stage predict in torch_geometric)."""
    e = tensors[EDGES].clone()
    e.view(-1)[0] = node
    tensors[EDGES] = e


def _edit_card(folder, change) -> None:
    path = folder / "stage_model.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


STAGE_DAMAGE = {
    "weight resized": (lambda d: _damage_tensors(d, lambda t: t.update({_first_weight(t): torch.zeros(7)})),
                       "fusion.safetensors do not fit the network .*size mismatch"),
    "card truncated": (lambda d: (d / "stage_model.json").write_text(
        (d / "stage_model.json").read_text(encoding="utf-8")[:200], encoding="utf-8"),
        "stage_model.json is not readable JSON"),
    "card a list": (lambda d: (d / "stage_model.json").write_text("[1, 2]", encoding="utf-8"),
                    "stage_model.json holds a JSON list"),
    "graph removed": (lambda d: _damage_tensors(d, lambda t: t.pop("graph.edge_index")),
                      "fusion.safetensors lack the tensor 'graph.edge_index'"),
    "gene statistics removed": (lambda d: _damage_tensors(d, lambda t: t.pop("genes.gene_sd")),
                                "lack the tensor 'genes.gene_sd'"),
    "no classes": (lambda d: _edit_card(d, lambda m: m.pop("classes")), "stage_model.json: its 'classes'"),
    "no modalities": (lambda d: _edit_card(d, lambda m: m.pop("modalities")), "stage_model.json: its 'modalities'"),
    "config edited": (lambda d: _edit_card(d, lambda m: m["config"].update(nonsense=1)),
                      "stage_model.json: its 'config'"),
    "graph node too large": (lambda d: _damage_tensors(d, lambda t: _set_edge(t, 10**9)),
                             "graph.edge_index holds node numbers from 0 to 1000000000; the gene graph has 30 node"),
    "graph node negative": (lambda d: _damage_tensors(d, lambda t: _set_edge(t, -5)),
                            "graph.edge_index holds node numbers from -5 to"),
    "graph of floats": (lambda d: _damage_tensors(d, lambda t: t.update({EDGES: t[EDGES].float()})),
                        "graph.edge_index is a torch.float32 tensor .* not 2 x E integer"),
    "graph flattened": (lambda d: _damage_tensors(d, lambda t: t.update({EDGES: t[EDGES].reshape(-1)})),
                        r"graph.edge_index is a torch.int64 tensor of shape \(\d+,\)"),
    "gene statistics resized": (lambda d: _damage_tensors(d, lambda t: t.update({"genes.gene_mean": torch.zeros(3)})),
                                r"genes.gene_mean has shape \(3,\), not one value per gene of the model \(30\)"),
    "NaN weight": (lambda d: _damage_tensors(d, lambda t: _set_first(t, float("nan"))),
                   "fusion.safetensors: 1 of the .* are NaN or infinite"),
    "infinite weight": (lambda d: _damage_tensors(d, lambda t: _set_first(t, float("inf"))),
                        "fusion.safetensors: 1 of the .* are NaN or infinite"),
}


@pytest.mark.parametrize("damage", list(STAGE_DAMAGE))
def test_stage_loader_refuses_a_damaged_model_folder(stage_model, tmp_path, damage):
    """A damaged or edited stage model folder is an InputError naming the file and the problem with the retrain
    fix, never a traceback (RuntimeError size mismatch, JSONDecodeError, KeyError)."""
    from lungai.fusion import model_io

    change, message = STAGE_DAMAGE[damage]
    bad = tmp_path / "bad"
    shutil.copytree(stage_model, bad)
    change(bad)
    with pytest.raises(InputError, match=message) as err:
        model_io.load(bad)
    assert str(bad) in err.value.problem and "lungai stage train" in err.value.fix


@pytest.mark.parametrize("kind", ["x/../../../rpm1/model", "../baseline_logreg", "svm", ""])
def test_stage_loader_reads_only_known_baseline_kinds(stage_model, tmp_path, kind):
    """stage_model.json's baseline keys name the files baseline_<kind>.skops: a kind lungai does not have (a path
    leading out of the model folder above all) is refused before any file is opened."""
    from lungai.fusion import model_io
    from lungai.fusion.baseline import KINDS

    bad = tmp_path / "bad"
    shutil.copytree(stage_model, bad)
    outside = tmp_path / "rpm1"
    outside.mkdir()
    _crafted(outside / "model.skops", exec)                  # would be refused anyway; must not even be opened
    _edit_card(bad, lambda m: m.update(baselines={kind: {"kind": "logreg"}}))
    with pytest.raises(InputError, match="names a baseline model .* that lungai does not have") as err:
        model_io.load(bad)
    assert all(k in err.value.problem for k in KINDS) and "could run code" not in err.value.problem


def test_stage_cli_reports_a_damaged_model_without_a_traceback(stage_model, tmp_path, capsys):
    """`lungai stage predict` / `validate` (and the Slicer stage panel, which runs the same command) exit 2 with the
    problem and the fix."""
    from lungai.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(stage_model, bad)
    STAGE_DAMAGE["weight resized"][0](bad)
    ehr = stage_model.parent / "c" / "ehr.csv"
    capsys.readouterr()
    assert main(["stage", "predict", "--model", str(bad), "--ehr", str(ehr), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "do not fit the network" in err and "Traceback" not in err and "lungai stage train" in err
    # the label given (a model saved from Python records none; the EHR's labels are read before the model - docs71)
    assert main(["stage", "validate", "--model", str(bad), "--ehr", str(ehr), "--label", "stage",
                 "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "do not fit the network" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists() and not (tmp_path / "v").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_seg_loader_refuses_non_finite_weights(tmp_path, value):
    """A member whose weights hold NaN / inf (a diverged run, a damaged file) would segment "no tumour found" with no
    warning: it is refused, naming the member file."""
    from safetensors.torch import load_file, save_file

    from lungai.seg.model_io import load_model

    good = _tiny_seg_model(tmp_path / "good")
    assert len(load_model(good)[1]) == 2
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    tensors = load_file(str(bad / "member_1.safetensors"))
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[1] = value
    save_file(tensors, str(bad / "member_1.safetensors"))
    with pytest.raises(InputError, match="member_1.safetensors: 1 of the .* are NaN or infinite") as err:
        load_model(bad)
    assert name in err.value.problem and "train the model again" in err.value.fix


def test_json_reader_names_the_file(tmp_path):
    from lungai.model_files import read_json

    (tmp_path / "m.json").write_text('{"a": ', encoding="utf-8")
    with pytest.raises(InputError, match="m.json is not readable JSON") as err:
        read_json(tmp_path / "m.json", "retrain")
    assert err.value.fix == "retrain"
    (tmp_path / "m.json").write_text('"text"', encoding="utf-8")
    with pytest.raises(InputError, match="holds a JSON str, not a model description"):
        read_json(tmp_path / "m.json", "retrain")
    (tmp_path / "m.json").write_text('{"a": 1}', encoding="utf-8")
    assert read_json(tmp_path / "m.json", "retrain") == {"a": 1}


def _tiny_seg_model(folder):
    """A tiny untrained 2-member segmentation model folder (save_model, no training)."""
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network, own_state
    from seg_helpers import tiny_config

    cfg = tiny_config()
    save_model(folder, cfg, [own_state(build_network(cfg)) for _ in range(2)], {"training": {}})
    return folder


def _edit(folder, **changes):
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    doc.update(changes)
    (folder / "model.json").write_text(json.dumps(doc), encoding="utf-8")


def test_seg_loader_refuses_edited_model_json(tmp_path):
    """An edited or corrupted model.json is an InputError naming the folder and the fix (re-train or restore),
    never a traceback; member files must be .safetensors names inside the model folder."""
    from lungai.seg.model_io import load_model

    good = _tiny_seg_model(tmp_path / "good")
    assert len(load_model(good)[1]) == 2
    cases = {
        "channels": ({"config": dict(json.loads((good / "model.json").read_text())["config"], channels=[8, 16, 32])},
                     "do not fit the network"),
        "no members": ({"member_files": []}, "member_files is \\[\\]"),
        "not a list": ({"member_files": "member_0.safetensors"}, "member_files is"),
        "elsewhere": ({"member_files": ["../elsewhere/w.safetensors"]}, "not a .safetensors file name inside"),
        "absolute": ({"member_files": [str(good / "member_0.safetensors")]}, "not a .safetensors file name inside"),
        "pickle": ({"member_files": ["member_0.pt"]}, "not a .safetensors file name inside"),
        "no config": ({"config": None}, "its config is not usable"),
    }
    for what, (changes, message) in cases.items():
        bad = tmp_path / what.replace(" ", "_")
        shutil.copytree(good, bad)
        _edit(bad, **changes)
        with pytest.raises(InputError, match=message) as err:
            load_model(bad)
        assert "train the model again" in err.value.fix, what
    (tmp_path / "elsewhere").mkdir(exist_ok=True)          # a real file outside the folder is not read either
    shutil.copy(good / "member_0.safetensors", tmp_path / "elsewhere" / "w.safetensors")
    with pytest.raises(InputError, match="inside"):
        load_model(tmp_path / "elsewhere")
    linked = tmp_path / "linked"                            # member files as links (git-annex / DVC caches): read
    shutil.copytree(good, linked)
    for f in linked.glob("member_*.safetensors"):
        store = tmp_path / "store" / f.name
        store.parent.mkdir(exist_ok=True)
        f.replace(store)
        f.symlink_to(store)
    assert len(load_model(linked)[1]) == 2
    cut = tmp_path / "truncated"
    shutil.copytree(good, cut)
    (cut / "model.json").write_text((good / "model.json").read_text()[:40], encoding="utf-8")
    with pytest.raises(InputError, match="not readable JSON") as err:
        load_model(cut)
    assert str(cut) in err.value.problem and "restore the model folder" in err.value.fix


def test_seg_model_not_calibrated_is_refused(tmp_path):
    """A model.json that train-seg saved before calibrating ("status": "calibrating"; a run killed then) is refused
    with the --resume fix; one without a status (shipped models) is complete."""
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network, own_state
    from lungai.seg.resources import default_model_dir
    from seg_helpers import tiny_config

    cfg = tiny_config()
    save_model(tmp_path / "m", cfg, [own_state(build_network(cfg))], {"training": {}}, complete=False)
    assert json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))["status"] == "calibrating"
    with pytest.raises(InputError, match="incomplete") as err:
        load_model(tmp_path / "m")
    assert "--resume" in err.value.fix
    assert len(load_model(tmp_path / "m", allow_incomplete=True)[1]) == 1
    assert "status" not in json.loads((default_model_dir() / "model.json").read_text(encoding="utf-8"))
    assert load_model(default_model_dir())[1]


def test_safetensors_files_get_the_umask_mode(tmp_path):
    """Weights and checkpoints are written like the other files (0666 less the umask), not 0600."""
    from lungai.model_files import save_safetensors

    old = os.umask(0o022)
    try:
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
        _tiny_seg_model(tmp_path / "seg")
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "seg" / "member_0.safetensors").stat().st_mode & 0o777 == 0o644


def test_segment_checks_a_model_folder_before_loading_it(tmp_path, capsys):
    """QA: the panel enabled Apply for a model folder lungai segment refused at once (a member file missing, method
    ensemble with 1 member).  check_model_folder is segment's one check of a model folder, without loading weights
    (the panel asks it too); segment runs it before reading the CT."""
    from lungai.cli import main
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.model_meta import check_model_folder
    from lungai.seg.networks import build_network, own_state
    from seg_helpers import tiny_config

    good = _tiny_seg_model(tmp_path / "good")
    assert check_model_folder(good, "ensemble")["member_files"]
    gone = tmp_path / "gone"
    shutil.copytree(good, gone)
    (gone / "member_1.safetensors").unlink()
    for check in (check_model_folder, load_model):              # the same words as loading it
        with pytest.raises(InputError, match="segmentation member weights .*member_1.safetensors is missing"):
            check(gone)
    cfg = tiny_config(members=1)
    save_model(tmp_path / "one", cfg, [own_state(build_network(cfg))], {"training": {}})
    assert check_model_folder(tmp_path / "one") and check_model_folder(tmp_path / "one", "mc-dropout")
    with pytest.raises(InputError, match="1 member, so the ensemble method") as err:
        check_model_folder(tmp_path / "one", "ensemble")
    assert "--method mc-dropout" in err.value.fix
    # lungai segment refuses before the CT is read (a CT that does not exist is not even looked at)
    assert main(["segment", str(tmp_path / "no-ct.nii.gz"), "-o", str(tmp_path / "out"), "--model",
                 str(tmp_path / "one"), "--method", "ensemble"]) != 0
    assert "1 member, so the ensemble method" in capsys.readouterr().err


def test_a_model_choice_is_checked_whole_and_names_its_model(tmp_path, capsys):
    """QA (review of 5d1a136): a model choice holding a 1-member model with --method ensemble said "the model has 1
    member ..." without naming which model; and the choice's own entries (one model, "models" not a list, an unknown
    rule, a bad route_volume_ml / route_unsure_max_ml) were left to load_model, so the panel enabled Apply for a
    choice segment refused.  check_model_folder checks them (check_choice_doc, load_choice's check too) and names the
    model of the choice; the panel's fix for it is found by the problem's key, not its text."""
    from lungai.cli import main
    from lungai.seg import model_meta
    from lungai.seg.model_io import save_model
    from lungai.seg.model_meta import check_model_folder
    from lungai.seg.networks import build_network, own_state
    from seg_helpers import tiny_config

    _tiny_seg_model(tmp_path / "good")
    cfg = tiny_config(members=1)
    save_model(tmp_path / "one", cfg, [own_state(build_network(cfg))], {"training": {}})
    choice = tmp_path / "choice"
    choice.mkdir()
    (choice / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": ["good", "one"]}))
    assert check_model_folder(choice, "mc-dropout") and check_model_folder(choice)
    with pytest.raises(InputError, match=r"^the model 'one' of the model choice in .*choice .*: the model has 1 "
                                         "member, so the ensemble method") as err:
        check_model_folder(choice, "ensemble")
    assert err.value.key == model_meta.ONE_MEMBER_ENSEMBLE_KEY and "--method mc-dropout" in err.value.fix
    assert main(["segment", str(tmp_path / "no-ct.nii.gz"), "-o", str(tmp_path / "out"), "--model", str(choice),
                 "--method", "ensemble"]) != 0
    assert "the model 'one' of the model choice" in capsys.readouterr().err
    for doc, match in (({"models": ["good"]}, "names 1 model; a model choice needs two or more"),
                       ({"models": "good, one"}, "not a list of model names"),
                       ({"models": ["good", "one"], "rule": "the nicest"}, "unknown rule"),
                       ({"models": ["good", "one"], "rule": model_meta.ROUTE_RULE}, "route_volume_ml"),
                       ({"models": ["good", "one"], "rule": model_meta.ROUTE_RULE, "route_volume_ml": "15 ml"},
                        "route_volume_ml"),
                       ({"models": ["good", "one"], "rule": model_meta.ROUTE_RULE, "route_volume_ml": 15,
                         "route_unsure_max_ml": 10}, "larger than"),
                       ({"models": ["good", "nowhere"]}, "'nowhere' is neither")):
        (choice / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", **doc}))
        with pytest.raises(InputError, match=match):
            check_model_folder(choice)


def test_the_model_folder_check_stays_light(tmp_path):
    """QA: the panel's check of a choice folder (check_model_folder on every change) imported SimpleITK (through
    lungai.seg.choice); it reads JSON only: no torch, SimpleITK or MONAI imported."""
    import subprocess
    import sys

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "member_files": [
            "member_0.safetensors", "member_1.safetensors"], "config": {"dropout": 0.1}}))
        for k in (0, 1):
            (tmp_path / name / f"member_{k}.safetensors").write_bytes(b"")
    (tmp_path / "choice").mkdir()
    (tmp_path / "choice" / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": ["a", "b"]}))
    code = ("import sys; from lungai.seg.model_meta import check_model_folder; "
            f"check_model_folder({str(tmp_path / 'choice')!r}, 'ensemble'); "
            "print([m for m in ('torch', 'SimpleITK', 'monai') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_stopped_training_chosen_as_model_names_the_resume(tmp_path, capsys):
    """QA: `lungai segment --model DIR` on the folder of a cancelled train-seg run (only checkpoints/) said "not a
    LungAI segmentation model (no model.json)": it names the run stopped and its resume (as the panel does)."""
    from lungai.cli import main
    from lungai.seg.model_meta import STOPPED_TRAINING, read_meta

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(InputError, match="holds a training that was stopped") as err:
        read_meta(tmp_path / "run")
    assert err.value.key == STOPPED_TRAINING and "--resume" in err.value.fix and str(tmp_path / "run") in err.value.fix
    assert main(["segment", str(tmp_path / "no-ct.nii.gz"), "-o", str(tmp_path / "out"), "--model",
                 str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "holds a training that was stopped" in err and "--resume" in err and "no model.json" not in err


def test_a_model_folder_still_training_names_its_process(tmp_path, capsys):
    """QA: `segment --model DIR` on the folder of a train-seg run still training (checkpoints/ only, or model.json
    "status": "calibrating") said it "stopped ... run again with --resume", which train-seg then refused: while
    a live process holds the folder's lock, it names it and says to wait."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started
    from lungai.seg.model_meta import CALIBRATING, IN_TRAINING, read_meta

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} train-seg\n")
        busy = f"{run} is being trained by process {other.pid} on {_host()} (started "
        with pytest.raises(InputError) as err:
            read_meta(run)
        assert err.value.key == IN_TRAINING and busy in err.value.problem and err.value.fix == "wait until it ends"
        (run / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "status": CALIBRATING,
                                                     "member_files": ["member_0.safetensors"]}))
        (run / "member_0.safetensors").write_bytes(b"")
        assert main_segment(tmp_path, run) != 0
        err = capsys.readouterr().err
        assert busy in err and "wait until it ends" in err and "--resume" not in err and "stopped" not in err
    finally:
        other.kill()
        other.wait()
    assert main_segment(tmp_path, run) != 0                         # its process gone: stopped, to be resumed
    err = capsys.readouterr().err
    assert "calibration finished" in err and "--resume" in err


def test_a_model_folder_trained_on_another_computer_says_how_to_clear_its_lock(tmp_path, monkeypatch):
    """QA: a model folder whose training was killed on another computer (a cluster job on a shared file system) was
    "being trained ... wait until it ends" forever: its lock's liveness cannot be checked from here, so the fix
    says how to clear it, the lock file named in full (the wording of check_not_running)."""
    from lungai.io.outputs import LOCK, check_not_running
    from lungai.seg.model_meta import IN_TRAINING, read_meta

    monkeypatch.chdir(tmp_path)
    (tmp_path / "oh" / "checkpoints").mkdir(parents=True)
    (tmp_path / "oh" / LOCK).write_text("4242 node123 1764600000.00 train-seg\n")
    with pytest.raises(InputError) as err:
        read_meta(Path("oh"))
    hint = (f"if no lungai run is going on on node123 any more (e.g. its container or cluster job has ended), "
            f"delete the lock file {tmp_path / 'oh' / LOCK} - only that file - and run again")
    assert err.value.key == IN_TRAINING
    assert err.value.problem.startswith(f"{tmp_path / 'oh'} is being trained by process 4242 on node123 (started ")
    assert err.value.fix == "wait until it ends; " + hint
    with pytest.raises(InputError) as err:
        check_not_running(Path("oh"), "train-seg")
    assert err.value.fix.endswith(hint)                             # one wording


def test_a_model_folder_whose_member_still_trains_names_it(tmp_path):
    """QA: `segment --model DIR` on the folder of a `train-seg --member K` process still training (its lock in
    DIR/.member_K.lock) said it "holds a training that was stopped ... --resume": the member's lock is read too."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started
    from lungai.seg.model_meta import IN_TRAINING, STOPPED_TRAINING, read_meta

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    member = run / ".member_0.lock"                                 # train-seg --member 0's lock folder
    member.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (member / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} train-seg\n")
        with pytest.raises(InputError) as err:
            read_meta(run)
        assert err.value.key == IN_TRAINING and err.value.fix == "wait until it ends"
        assert f"{run}: member 0 is being trained by process {other.pid} on {_host()} (started " in err.value.problem
    finally:
        other.kill()
        other.wait()
    with pytest.raises(InputError) as err:                          # its process gone: stopped, to be resumed
        read_meta(run)
    assert err.value.key == STOPPED_TRAINING


def main_segment(tmp_path, model):
    from lungai.cli import main

    return main(["segment", str(tmp_path / "no-ct.nii.gz"), "-o", str(tmp_path / "out"), "--model", str(model)])


def test_mc_passes_has_one_default():
    """QA: five functions (evaluate_case, evaluate_cases, calibrate_model, train_ensemble, predict_probs) still
    wrote 10 MC passes as their own default: every default is lungai.seg.config.MC_PASSES."""
    import pathlib
    import re

    import lungai

    root = pathlib.Path(lungai.__file__).parent
    literal = re.compile(r"mc_passes\s*(:\s*int\s*)?=\s*\d")
    found = [f"{path.relative_to(root)}:{n}" for path in sorted(root.rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if literal.search(line)]
    assert not found, found


@pytest.mark.parametrize("n", [1, 2])
def test_loose_id_matches_count_in_the_singular_and_the_plural(n):
    """QA pluralseg62: "1 patients match a training patient ignoring case ...: check the IDs - they are validated as
    external" (validate) and "1 patients match a training patient's ID only ignoring case ...: if they are those
    patients, their predictions are in-sample" (predict): the count's own number now, the words agreeing with it."""
    from lungai.model_files import external_patients, in_sample_patients, training_patients

    meta = {"training_patients": training_patients([f"LUNG1-{i:03d}" for i in range(1, 6)])}
    ids = ["LUNG1-010", "lung1-001", "LUNG1-2"][:n + 1]       # 1 or 2 loose matches beside an external patient
    _, record, notes = external_patients(meta, ids, train="`lungai stage train`", honest="cv")
    assert record["n_training_loose_match"] == n
    if n == 1:
        assert notes[0].startswith("1 patient matches a training patient ignoring case")
        assert "check the IDs - it is validated as external; write the IDs as at training if it is the same " \
               "patient" in notes[0]
    else:
        assert notes[0].startswith("2 patients match a training patient ignoring case")
        assert "check the IDs - they are validated as external; write the IDs as at training if they are the same " \
               "patients" in notes[0]
    _, _, note = in_sample_patients(meta, ids, fitted="risks", honest="cv", train="`lungai rp train`",
                                    column="warnings")
    text = str(note)
    assert text.startswith("1 patient matches a training patient's ID only ignoring case" if n == 1 else
                           "2 patients match a training patient's ID only ignoring case")
    assert ("if it is that patient, its prediction is in-sample" if n == 1 else
            "if they are those patients, their predictions are in-sample") in text


def test_the_in_sample_warning_counts_the_patients_without_naming_them_in_its_without_ids_form():
    """QA stagefollow64: "2 of the 4 patients were in the model's training cohort (LUNG1-001, LUNG1-002): ..." (stage
    and rp predict) had no ``without_ids`` form - the one ID-naming note of stage predict without it.  Now an
    InputNote: its text as before (rp predict prints the same), its form without IDs counting them."""
    from lungai.errors import InputNote
    from lungai.model_files import in_sample_patients, training_patients

    meta = {"training_patients": training_patients([f"LUNG1-{i:03d}" for i in range(1, 6)])}
    ids = ["LUNG1-001", "LUNG1-002", "lung1-3", "LUNG1-010"]
    _, _, note = in_sample_patients(meta, ids, fitted="stage", honest="cv", train="`lungai stage train`",
                                    column="notes")
    assert isinstance(note, InputNote)
    assert str(note).startswith("2 of the 4 patients were in the model's training cohort (LUNG1-001, LUNG1-002): "
                                "their predictions are in-sample")
    assert "1 patient matches a training patient's ID only ignoring case / leading zeros / look-alike dashes " \
           "(lung1-3): if it is that patient" in str(note)
    assert note.without_ids == str(note).replace(" (LUNG1-001, LUNG1-002)", "").replace(" (lung1-3)", "")
    assert not any(i in note.without_ids for i in ids)


@pytest.mark.parametrize("named", [["R01-001 (a)"], ["Smith, J"], ["Smith, J", "R01-002"], ["(x)", "a, b (c)", "R"],
                                   [("X1", "Doe, J (2)")]])
def test_the_form_without_ids_drops_ids_holding_commas_or_parentheses(named):
    """QA ids65: ``without_named_ids`` split the " (ID, ID)" list at ", " and matched no parentheses inside it, so a
    note naming "R01-001 (a)" or "Smith, J" got no form without the IDs (None: the note with its IDs was kept where
    only the form without them may go).  Now the list is matched as the known IDs themselves."""
    from lungai.model_files import _shown, external_notes, external_patients, training_patients, without_named_ids

    ids = ["R01-001 (a)", "Smith, J", "R01-002", "(x)", "a, b (c)", "R", ("X1", "Doe, J (2)"), "EXT-1"]
    text = f"2 of 9 patients were in the model's training cohort ({_shown(named)}) and are left out (--x)"
    assert without_named_ids(text, ids) == "2 of 9 patients were in the model's training cohort and are left out (--x)"
    many = f"9 patients were in the training cohort ({_shown(ids + ids)}): in-sample"
    assert without_named_ids(many, ids) == "9 patients were in the training cohort: in-sample"
    assert without_named_ids("no IDs here (EXT-2)", ids) is None                 # not a patient of ids: kept
    # through external_patients / external_notes, as stage and rp validate make them
    meta = {"training_patients": training_patients(ids[:7])}
    _, _, notes = external_patients(meta, ids, train="`lungai stage train`", honest="cv")
    (note,) = external_notes(notes, {"external": True}, ids)
    assert "Smith, J" in str(note)
    flat = [i for row in ids for i in (row if isinstance(row, tuple) else (row,))]
    assert note.without_ids and not [i for i in flat if i in note.without_ids], note.without_ids
    assert note.without_ids.startswith("7 of the 8 patients were in the model's training cohort and are left out")
