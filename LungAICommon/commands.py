"""``lungai`` command lines built from panel values: one function per command the panels run.

These follow the documented CLI contracts (see docs/slicer.md); a test parses every command
built here with the real ``lungai`` argument parser, so a drifting flag is caught.  Coordinates
passed to the CLI are physical LPS millimetres (SimpleITK's convention); the panels convert from
Slicer's RAS with :func:`ras_to_lps`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, NamedTuple, Optional, Sequence

SEG_METHODS = ("ensemble", "mc-dropout")
# The panel's choices: "auto" leaves --method out, so the CLI decides as it does for a user who gives none
# (the ensemble; MC dropout for a 1-member model, which has no ensemble to measure agreement).
SEG_METHOD_AUTO = "auto"
PANEL_SEG_METHODS = (SEG_METHOD_AUTO,) + SEG_METHODS
RADIOMICS_PRESETS = ("default", "ibsi-a", "ibsi-b", "ibsi-c", "ibsi-d", "ibsi-e")
# Same names as lungai.radiomics.params (a test checks they agree): pyradiomics' seven classes, then
# the IBSI-1 families pyradiomics lacks (lungai.radiomics.features).
FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm",
                   "gldzm", "intensityhistogram", "intensityvolume", "localintensity")
IMAGE_TYPES = ("Original", "LoG", "Wavelet")


def ras_to_lps(point: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in point)
    return (-x, -y, z)


def _triple(point: Sequence[float]) -> str:
    return ",".join(f"{float(v):.3f}" for v in point)


def is_set(path) -> bool:
    """A path the user chose (parameter-node paths default to "." when empty)."""
    return path is not None and str(path) not in ("", ".")


_given = is_set


def segment(ct: Path, output_dir: Path, model_dir: Optional[Path] = None, method: Optional[str] = None,
            mc_passes: Optional[int] = None, seed_point_lps: Optional[Sequence[float]] = None,
            roi_lps: Optional[Sequence[float]] = None, patients: Sequence[str] = (),
            no_grow: bool = False, scene_coordinates: bool = False) -> list[str]:
    """``lungai segment CT -o OUT [--model DIR] [--method M] [--mc-passes N] [--seed-point x,y,z | --roi ...]
    [--no-grow] [--scene-coordinates] [--patient NAME ...]``.

    ``scene_coordinates``: the seed point / ROI were converted from the scene's nodes (RAS) to LPS by the caller
    (``--scene-coordinates``: no note asks whether Slicer's RAS numbers were given); only with a seed point or ROI.

    ``no_grow``: seed / ROI mode keeps its first box (``--no-grow``; the panel's "Do not grow the box"); refused
    without a seed point or an ROI, as ``lungai segment`` refuses it (no growing box).

    ``patients``: the CT node's names of its patient (:func:`lungai.scene.dicom.volume_patient_names`; the exported
    work file names none), a ``--patient`` each: a model trained / validated on that patient says its result is
    in-sample.

    ``roi_lps`` is two opposite box corners ``(x0, y0, z0, x1, y1, z1)`` in LPS mm.  ``method`` None or "auto":
    no ``--method`` (the model's own: the ensemble, MC dropout for a 1-member model); ``mc_passes`` is then
    passed too (used only when MC dropout runs).
    """
    if method == SEG_METHOD_AUTO:
        method = None
    if method is not None and method not in SEG_METHODS:
        raise ValueError(f"method must be one of {PANEL_SEG_METHODS}, not {method!r}")
    if seed_point_lps is not None and roi_lps is not None:
        raise ValueError("give a seed point or an ROI, not both")
    args = ["segment", str(ct), "-o", str(output_dir)]
    if method is not None:
        args += ["--method", method]
    if _given(model_dir):
        args += ["--model", str(model_dir)]
    if method != "ensemble" and mc_passes:
        args += ["--mc-passes", str(int(mc_passes))]
    if seed_point_lps is not None:
        args += ["--seed-point", _triple(seed_point_lps)]
    if roi_lps is not None:
        if len(roi_lps) != 6:
            raise ValueError("an ROI is 6 numbers: two opposite corners x0,y0,z0,x1,y1,z1")
        args += ["--roi", _triple(roi_lps[:3]) + "," + _triple(roi_lps[3:])]
    if no_grow:
        if seed_point_lps is None and roi_lps is None:
            raise ValueError("--no-grow keeps the first box of seed / ROI mode: give a seed point or an ROI")
        args += ["--no-grow"]
    if scene_coordinates and (seed_point_lps is not None or roi_lps is not None):
        args += ["--scene-coordinates"]
    for name in patients:
        args += [f"--patient={name}"]          # "=": a name starting with "-" is not taken for an option
    return args


def ras_bounds_to_lps_corners(bounds: Sequence[float]) -> tuple[float, ...]:
    """RAS bounds (xmin, xmax, ymin, ymax, zmin, zmax) -> LPS corners (x0, y0, z0, x1, y1, z1)."""
    b = [float(v) for v in bounds]
    if b[1] < b[0] or b[3] < b[2] or b[5] < b[4]:
        raise ValueError("the ROI box is empty; place it on the tumour region")
    return (-b[0], -b[2], b[4], -b[1], -b[3], b[5])


# The ``lungai train-seg`` options the Segmentation panel offers, by the CLI's names (argparse dests; the panel's
# parameter is "train" + the name in CamelCase, e.g. lr_schedule -> trainLrSchedule).  Their defaults, choices and
# flags are read from train-seg's own parser (:func:`train_seg_options`), never repeated here or in the panel.
PANEL_TRAIN_OPTIONS = ("label", "arch", "members", "epochs", "iters", "batch", "patience", "lr", "lr_schedule",
                       "patch", "spacing", "channels", "infer_patch", "dropout", "deep_supervision", "augment", "fg_fraction", "tta", "val_fraction",
                       "test_fraction", "patients", "synthetic", "synthetic_chests", "implant", "implant_into",
                       "mc_passes", "seed", "device", "workers")
# what the panel gives as positional choices, and what it decides itself (resume): not options of the dict
_TRAIN_FIXED = ("images", "masks", "output", "resume")


@functools.lru_cache(maxsize=None)
def command_options(command: str) -> dict:
    """{dest: argparse action} of every option of ``lungai COMMAND`` (train-seg, segment, eval-seg), from the
    command's own parser (light)."""
    from lungai.cli.seg import command_parser

    return {a.dest: a for a in command_parser(command)._actions if a.option_strings and a.dest != "help"}


def train_seg_options() -> dict:
    """{dest: argparse action} of every ``lungai train-seg`` option, from train-seg's own parser (light)."""
    return command_options("train-seg")


def command_default(command: str, dest: str):
    """The panel's default for option ``dest`` of ``lungai COMMAND``: the CLI's default; for an option whose CLI
    default is None (not given: e.g. --lr, the architecture's; --fg-fraction), its type's empty value (0, 0.0, ""),
    which :func:`train_option_value` turns back into "not given"."""
    action = command_options(command)[dest]
    if action.default is not None:
        return action.default
    return {int: 0, float: 0.0}.get(action.type, "")


def train_seg_default(dest: str):
    """The panel's default for train-seg option ``dest`` (:func:`command_default`)."""
    return command_default("train-seg", dest)


def segment_default(dest: str):
    """The panel's default for ``lungai segment`` option ``dest`` (e.g. ``mc_passes``; :func:`command_default`)."""
    return command_default("segment", dest)


def train_seg_choices(dest: str) -> tuple:
    """The CLI's choices of train-seg option ``dest`` (e.g. ``arch``)."""
    return tuple(train_seg_options()[dest].choices)


def train_seg_help(dest: str) -> str:
    """The panel's tooltip of train-seg option ``dest``: the CLI's flag, help and default (``--help`` text)."""
    action = train_seg_options()[dest]
    default = "not given" if action.default is None else ",".join(map(str, action.default)) \
        if isinstance(action.default, (list, tuple)) else str(action.default)
    text = f"lungai train-seg {action.option_strings[-1]}" + (f": {action.help}" if action.help else "")
    return f"{text} (default: {default})"


def train_option_value(dest: str, value):
    """A panel value as train-seg takes it: paths as text, an empty value (0, "", an unset path ".") of an option
    whose CLI default is None as None (not given)."""
    action = train_seg_options()[dest]
    if isinstance(value, Path) or hasattr(value, "__fspath__"):
        value = str(value) if is_set(value) else ""
    if isinstance(value, str):
        value = value.replace(" ", "") if action.type is None and "," in value else value.strip()
    if action.default is None and (not value or not is_set(value)):
        return None
    return value


def train_segmentation(images_dir: Path, masks_dir: Path, model_dir: Path, options: Optional[dict] = None,
                       resume: bool = False) -> list[str]:
    """``lungai train-seg --images DIR --masks DIR -o MODEL_DIR [--OPTION VALUE ...] [--resume]``.

    ``options``: {train-seg option (argparse dest, e.g. ``arch``, ``lr_schedule``): value}; a list value is one token
    ``--spacing=-1,1,2`` (argparse would read a separate "-1,1,2" as an option); an option is passed
    only when its value differs from the CLI's default (:func:`train_option_value`; ``label`` 0: every nonzero
    voxel is tumour, no ``--label``).  ``resume``: continue the interrupted run in ``model_dir``
    (:func:`interrupted_training`); train-seg refuses a resume whose options differ from the first run's."""
    import argparse

    actions = train_seg_options()
    args = ["train-seg", "--images", str(images_dir), "--masks", str(masks_dir), "-o", str(model_dir)]
    for dest, raw in (options or {}).items():
        if dest not in actions or dest in _TRAIN_FIXED:
            raise ValueError(f"{dest!r} is not a train-seg option the panel can set")
        action, value = actions[dest], train_option_value(dest, raw)
        if action.choices is not None and value not in action.choices:
            raise ValueError(f"{action.option_strings[-1]} must be one of {tuple(action.choices)}, not {value!r}")
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            args.append(flag)
        elif isinstance(value, str) and ("," in value or value.startswith("-")):
            args.append(f"{flag}={value}")   # a list ("-1,1,2") as one token: argparse reads "-1,1,2" as an option
        else:
            args += [flag, f"{value:.10g}" if isinstance(value, float) else str(value)]
    if resume:
        args.append("--resume")
    return args


TRAIN_CHECKPOINTS = "checkpoints"    # what `lungai train-seg` writes into -o while it trains (lungai/cli/seg.py)


def trained_model_complete(model_dir: Path) -> bool:
    """``model_dir`` holds a finished ``lungai train-seg`` model: its model.json records the calibration, the
    last step of a training, and no "status" (train-seg marks model.json "status": "calibrating" until then:
    :data:`lungai.seg.model_io.CALIBRATING`, not imported here - this module stays light)."""
    import json

    path = Path(model_dir) / "model.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return isinstance(doc, dict) and "calibration" in doc and doc.get("status") is None
    except (OSError, ValueError, TypeError):
        return False


def interrupted_training(model_dir) -> bool:
    """``model_dir`` holds an interrupted (killed, cancelled) ``lungai train-seg`` run: its checkpoints folder
    and no finished model.  ``train-seg ... --resume`` continues it (refused with other options than the first
    run's); without ``--resume`` train-seg refuses the folder.  A folder a train-seg run still trains (it holds the
    folder's lock: :func:`training_in_progress`) is not interrupted, nor one of a run stopped before its first epoch
    ended (:func:`lungai.seg.settings.untrained_run`: nothing trained, train-seg starts anew there with any options)."""
    if not (is_set(model_dir) and (Path(model_dir) / TRAIN_CHECKPOINTS).is_dir()
            and not trained_model_complete(model_dir) and training_in_progress(model_dir) is None):
        return False
    from lungai.seg.settings import untrained_run

    return not untrained_run(Path(model_dir) / TRAIN_CHECKPOINTS)


def training_in_progress(model_dir) -> str | None:
    """"MODEL is being trained by process N on HOST (started ...)" while a ``lungai train-seg`` run (e.g. started
    from a terminal, or by another Slicer; a ``--member K`` process included) holds the folder's lock, else None
    (:func:`lungai.seg.model_meta.training_in_progress`)."""
    busy = training_busy(model_dir)
    return busy.problem if busy else None


def training_busy(model_dir):
    """The InputError of :func:`training_in_progress` (its fix: :data:`lungai.seg.model_meta.TRAINING_WAIT`, then
    how to clear the lock of a run on another computer), else None."""
    if not is_set(model_dir):
        return None
    from lungai.seg.model_meta import training_busy as busy

    return busy(model_dir)


def segment_column_name(name: str) -> str:
    """A segment name as used in feature columns: "Tumor" -> "tumour", "Right lung" -> "right_lung", "Lung (R)" ->
    "lung_r"; it keeps the segment's role (:func:`lungai.segment_roles.segment_role`): "Lungs-GTV" -> "lungs_minus_gtv"
    (``lungs_gtv`` would be a tumour's name, Lung_GTV)."""
    safe = "".join(c if c.isalnum() else "_" for c in name.strip().lower()).strip("_")
    safe = "_".join(part for part in safe.split("_") if part)
    safe = {"tumor": "tumour"}.get(safe, safe) or "segment"
    try:        # the core reads the lung role from this name: a "-" meaning minus ("Lungs-GTV") is said in a word
        from lungai.segment_roles import segment_role
    except ImportError:
        return safe
    if segment_role(name) == "lungs_minus_tumour" and segment_role(safe) != "lungs_minus_tumour":
        import re

        safe = re.sub(r"_(i?gtv)", r"_minus_\1", safe, count=1)      # "Lungs-GTV" -> "lungs_minus_gtv"
    return safe


def parse_numbers(text: str):
    """ "1, 2;3" -> [1.0, 2.0, 3.0]; None when a value is not a number."""
    try:
        return [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        return None


# The presets whose feature classes and image types the Lung Radiomics panel's checkboxes choose: the default
# preset (pyradiomics' seven classes, Original, like the checkboxes' defaults).  An ibsi-a..e preset or a parameter
# file brings its own (every class on the original image: IBSI-1 is defined there; the file's featureClass and
# imageType), as ``lungai radiomics --params P`` without --feature-classes / --image-types.
PANEL_CHOSEN_PRESETS = ("default",)


class RadiomicsChoice(NamedTuple):
    """What the Lung Radiomics panel passes to ``lungai radiomics`` / ``radiomics-batch``
    (:func:`radiomics_choice`)."""

    params: str                       # --params: a preset name or the parameter file's path
    feature_classes: list             # --feature-classes ([]: not passed, the parameter set's own)
    image_types: list                 # --image-types ([]: not passed)
    log_sigma: list                   # --log-sigma (None: the sigmas text is not numbers)
    ticked: bool                      # the checkboxes (classes, image types, LoG sigmas) choose; else `note` says whose
    note: str                         # what is computed when the checkboxes do not choose ("" when they do)


def radiomics_choice(source: str, preset: str, params_file, ticked_classes: Iterable[str],
                     ticked_types: Iterable[str], log_sigma_text: str) -> RadiomicsChoice:
    """The options the panel passes for its choices, so that the panel gives what the CLI gives for the same
    ``--params``: ``source`` "preset" (``preset``) or "file" (``params_file``, a pyradiomics YAML).

    The default preset: the ticked classes / image types (and the LoG sigmas with LoG).  An ibsi-a..e preset or a
    parameter file: no --feature-classes / --image-types, so the parameter set's own apply (every IBSI-1 class on the
    original image; the file's featureClass / imageType, e.g. LoG sigma 2) - the panel shows ``note`` instead of the
    checkboxes, which keep their values for the default preset."""
    if source == "file":
        params = str(params_file)
        note = ("the parameter file's featureClass and imageType (as lungai radiomics --params FILE; "
                "edit the file to change them)")
    else:
        params = preset
        note = (f"every feature class (all IBSI-1 families) on the Original image: the {preset} preset's "
                "(IBSI-1 is defined on the original image)")
    if source != "file" and preset in PANEL_CHOSEN_PRESETS:
        types = [t for t in IMAGE_TYPES if t in set(ticked_types)]
        return RadiomicsChoice(params, [c for c in FEATURE_CLASSES if c in set(ticked_classes)], types,
                               parse_numbers(log_sigma_text), True, "")
    return RadiomicsChoice(params, [], [], [], False, note)


def _feature_options(feature_classes, image_types, log_sigma, wide) -> list[str]:
    args = []
    classes = list(feature_classes or [])
    types = list(image_types or [])
    bad = [c for c in classes if c not in FEATURE_CLASSES] + [t for t in types if t not in IMAGE_TYPES]
    if bad:
        raise ValueError(f"unknown feature classes / image types: {bad}")
    if classes:
        args += ["--feature-classes", *classes]
    if types:
        args += ["--image-types", *types]
    if log_sigma and "LoG" in types:
        args += ["--log-sigma", *[f"{float(s):g}" for s in log_sigma]]
    if wide:
        args.append("--wide")
    return args


def case_option(case) -> str:
    """``--case=NAME`` (one token): the CT node's name as the ``case`` column.  As two tokens a name beginning with
    "-" ("-1 CT", "-CT") was read by argparse as an option, and the run failed with "argument --case: expected one
    argument"."""
    return f"--case={case}"


def radiomics(image: Path, label_map: Path, output_csv: Path, segments: Sequence[tuple[str, int]],
              params: str = "default", feature_classes: Iterable[str] = (), image_types: Iterable[str] = (),
              log_sigma: Sequence[float] = (), wide: bool = False, case: Optional[str] = None) -> list[str]:
    """``lungai radiomics --image CT --mask LABELS --label NAME=N ... --params P [...] -o features.csv``.

    ``segments`` are (name, label value) pairs of ``label_map``; ``params`` is a preset
    (:data:`RADIOMICS_PRESETS`) or a pyradiomics YAML file.
    """
    if not segments:
        raise ValueError("choose at least one segment")
    args = ["radiomics", "--image", str(image), "--mask", str(label_map)]
    for name, value in segments:
        args += ["--label", f"{segment_column_name(name)}={int(value)}"]
    args += ["--params", str(params)]
    args += _feature_options(feature_classes, image_types, log_sigma, wide)
    if case:
        args.append(case_option(case))
    return args + ["-o", str(output_csv)]


def radiomics_batch(manifest: Path, output_csv: Path, workers: Optional[int] = None, params: str = "default",
                    feature_classes: Iterable[str] = (), image_types: Iterable[str] = (),
                    log_sigma: Sequence[float] = (), wide: bool = False) -> list[str]:
    """``lungai radiomics-batch MANIFEST --params P [...] [--workers N] -o features.csv``."""
    args = ["radiomics-batch", str(manifest), "--params", str(params)]
    args += _feature_options(feature_classes, image_types, log_sigma, wide)
    if workers is not None:
        args += ["--workers", str(int(workers))]  # 0 = in this process, no Dask cluster
    return args + ["-o", str(output_csv)]


def dose_features(dose: Path, ct: Path, lungs: Path, output_csv: Path, gtv: Optional[Path] = None,
                  case: Optional[str] = None, dose_unit: str = "Gy", lungs_name: Optional[str] = None,
                  gtv_name: Optional[str] = None, envelope: Optional[Path] = None,
                  envelope_name: Optional[str] = None, lungs_exclude_gtv: bool = False) -> list[str]:
    """``lungai dose-features --dose DOSE --ct CT --lungs MASK [--gtv MASK] [--case ID] [--dose-unit cGy]
    [--lungs-name TEXT] [--lungs-exclude-gtv] [--gtv-name TEXT] -o dose.csv``.

    ``case``: the ``case`` column (the panel gives the CT node's name, as for the radiomics table; without
    it the CLI names the case after the CT file, "ct" for the panel's exported copy).  ``dose_unit``: the unit
    of the exported dose image's voxels (Gy or cGy: a SlicerRT dose node keeps its RTDOSE's DoseUnits).
    ``lungs_name`` / ``gtv_name``: what the masks are for the CSV's masks column (the panel: the segments
    exported into them), instead of their (temporary) file names.  ``envelope`` / ``envelope_name``: without a GTV,
    the tumour's motion envelope (iGTV) subtracted from the lungs (``--envelope``), and what it is.
    ``lungs_exclude_gtv``: the lungs are the lungs minus the GTV as contoured (a 'Lungs-GTV' segment:
    ``--lungs-exclude-gtv``), said so in the masks column without a GTV."""
    args = ["dose-features", "--dose", str(dose), "--ct", str(ct), "--lungs", str(lungs), "-o", str(output_csv)]
    if dose_unit != "Gy":
        args += ["--dose-unit", str(dose_unit)]
    if lungs_name:
        args += ["--lungs-name", str(lungs_name)]
    if lungs_exclude_gtv:
        args.append("--lungs-exclude-gtv")
    if _given(gtv):
        args += ["--gtv", str(gtv)]
        if gtv_name:
            args += ["--gtv-name", str(gtv_name)]
    if _given(envelope):
        args += ["--envelope", str(envelope)]
        if envelope_name:
            args += ["--envelope-name", str(envelope_name)]
    if case:
        args.append(case_option(case))
    return args


def sample(output_dir: Path) -> list[str]:
    """``lungai sample -o DIR``: the built-in synthetic case."""
    return ["sample", "-o", str(output_dir)]


def rp_predict(model_dir: Path, patients_csv: Path, output_csv: Path, top: int = 5) -> list[str]:
    """``lungai rp predict MODEL_DIR PATIENTS.csv -o predictions.csv --top K``."""
    return ["rp", "predict", str(model_dir), str(patients_csv), "-o", str(output_csv), "--top", str(int(top))]


def stage_predict(model_dir: Path, output_dir: Path, ehr: Optional[Path] = None, rna: Optional[Path] = None,
                  ct_manifest: Optional[Path] = None, explain: bool = True) -> list[str]:
    """``lungai stage predict --model DIR [--ehr CSV] [--rna CSV] [--ct MANIFEST] -o OUT [--explain]``.

    The CT manifest is a CSV ``id,image,mask`` (see :func:`ct_manifest_rows`).  OUT gets
    predictions.csv (``p_<class>`` columns, ``predicted``); with ``explain``
    top_genes_per_patient.csv and gradcam/<id>_gradcam.nii.gz.
    """
    if not (_given(ehr) or _given(rna) or _given(ct_manifest)):
        raise ValueError("give at least one of EHR, RNA or CT")
    args = ["stage", "predict", "--model", str(model_dir)]
    for flag, value in (("--ehr", ehr), ("--rna", rna), ("--ct", ct_manifest)):
        if _given(value):
            args += [flag, str(value)]
    args += ["-o", str(output_dir)]
    return args + (["--explain"] if explain else [])


def ct_manifest_rows(patient_id: str, ct: Path, mask: Path) -> list[dict]:
    """The one-patient CT manifest for ``lungai stage``: columns id, image, mask."""
    if not str(patient_id).strip():
        raise ValueError("the CT branch needs the patient id used in the EHR/RNA tables")
    return [{"id": str(patient_id).strip(), "image": str(ct), "mask": str(mask)}]
