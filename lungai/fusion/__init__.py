"""NSCLC stage classification by intermediate fusion of CT, RNA-seq and EHR.

Folder map (one concern per file):

- ``labels.py``      missing-value tokens, label cleaning, stage group from T/N/M.
- ``data.py``        read EHR table, RNA matrix (orientation detected), CT manifest; join by patient ID.
- ``ct_crop.py``     tumour-centred CT crops (CNN input) and their geometry; image features for the baseline.
- ``preprocess.py``  EHR encoding (median imputation + missing indicators), top-k variance genes per fold.
- ``graph.py``       gene graph: co-expression within the training fold or a user edge list.
- ``models/``        EHR MLP, gene GNN (GATConv), CT 3D CNN, fusion model (masking tokens, attention).
- ``baseline.py``    baseline MLP on image features + clinical (scikit-learn pipeline).
- ``losses.py``      class-balanced focal loss.
- ``train.py``       seeded training loop with early stopping.
- ``pipeline.py``    one fitted fusion model with its fold-fitted preprocessing.
- ``folds.py``       the class counts the (nested) CV needs and the stratified splits (light: checked with the EHR labels).
- ``cv.py``          stratified (nested) k-fold cross-validation of baseline and fusion.
- ``metrics.py``     accuracy, macro-F1, macro-AUC with mean +- SD and bootstrap CI.
- ``plots.py``       confusion-matrix and t-SNE PNGs.
- ``explain.py``     Shapley values on genes (captum), 3D Grad-CAM on the CT branch, t-SNE of embeddings.
- ``model_io.py``    locked models: safetensors + JSON + skops (no pickle).
- ``balance.py``     a locked model's training class balance in words (light: the Slicer panel reads it).
- ``outputs.py``     what each stage command writes into its -o folder, checked before any work (light).
- ``synthetic.py``   synthetic multimodal cohort with known per-modality signal.
- ``api.py``         ``train_stage_model`` / ``predict_stage`` for scripts and the demo.
"""


# `lungai stage cv`'s default outer and inner stratified folds (its --folds, --inner-folds)
CV_FOLDS = 5
CV_INNER_FOLDS = 3


def folds_that_fit(class_counts, folds: int = CV_FOLDS, inner_folds: int = CV_INNER_FOLDS):
    """The (outer folds, inner folds) closest to ``folds`` / ``inner_folds`` that ``lungai stage cv`` accepts for a
    cohort of these patients per class (:func:`lungai.fusion.folds.check_labels`: each class >= the outer folds;
    :func:`lungai.fusion.folds.check_inner_labels`: each class >= the inner folds in every outer training part, 1 = no
    inner CV), or None when no CV fits (one class, or a class of one patient).  Light (no numpy): what ``stage synth``
    suggests for the cohort it wrote.  Stratified k folds give each class's test parts floor or ceil(c / k) of its c
    patients, so the smallest training part is that of the smallest class, c - ceil(c / k)."""
    counts = [int(c) for c in class_counts]
    smallest = min(counts, default=0)
    if len(counts) < 2 or smallest < 2:
        return None
    k = min(folds, smallest)
    train_part = smallest - -(-smallest // k)
    return k, (inner_folds if train_part >= inner_folds else train_part if train_part >= 2 else 1)


def gradcam_file(patient_id) -> str:
    """The Grad-CAM volume of a patient in a ``stage predict --explain`` folder, relative to it:
    ``gradcam/<name>_gradcam.nii.gz`` with the file name of the patient ID (:func:`lungai.radiomics.manifest.safe_name`:
    an ID such as ``H/2019/001`` or ``../x`` never makes folders or writes outside ``gradcam/``). The one rule of the
    writer (``stage predict``) and the readers (the Slicer panel); ``predictions.csv`` lists each patient's file."""
    from lungai.radiomics.manifest import safe_name

    return f"gradcam/{safe_name(patient_id)}_gradcam.nii.gz"


def no_explanation_text(model: str, selected: bool, fix: str) -> str:
    """Why a stage prediction has no gene Shapley values or Grad-CAM: they explain the fusion network, and ``model``
    (a plain baseline) predicted - the locked model's selected one (``selected``: it beat the fusion in the inner CV)
    or one chosen with ``--use`` (then nothing is said of the inner CV: a baseline of a lower inner macro-F1 than the
    fusion's was said to have beaten it).  ``fix``: how to get them, in the reader's words (the command's option, the
    panel's command).  The one text of ``stage predict --explain`` and the Slicer panel's stage result."""
    why = " (the locked model's selected model: it beat the fusion in the inner CV)" if selected else ""
    return (f"no explanations written: gene Shapley values and Grad-CAM explain the fusion network, but the "
            f"predictions come from {model}{why}; {fix}")


# the genes of the RNA module ``lungai stage synth`` plants (lungai.fusion.synthetic.make_cohort): its --genes minimum
SYNTH_MODULE_SIZE = 15
# what ``lungai stage synth`` (:func:`lungai.fusion.synthetic.make_cohort`) writes into its folder: here, light, for
# the output folder's check before the command's imports (lungai.cli.stage)
COHORT_OUTPUTS = ("ehr.csv", "rna.csv", "manifest.csv", "truth.json", "ct")


def check_input_given(ehr, rna, ct) -> None:
    """At least one of the tables (``--ehr``, ``--rna``, ``--ct``) is given: the one check of ``lungai stage``'s
    command line, before its heavy imports (:mod:`lungai.cli.stage`), and of its workflows."""
    if not (ehr or rna or ct):
        from lungai.errors import InputError

        raise InputError("no input data", "pass at least one of --ehr, --rna, --ct")


# a modality whose table a run was not given, in the words of its notes (lungai.fusion.pipeline.FusionPipeline.fit)
NOT_GIVEN = {"ehr": "no EHR table given (--ehr)", "rna": "no RNA table given (--rna)", "ct": "no CT manifest given (--ct)"}
CT_NOT_GIVEN_NOTE = f"{NOT_GIVEN['ct']}: CT branch masked"


def ct_unused_text(model: str, notes=(), modalities=None) -> str:
    """Why CTs given to the stage model ``model`` (a row name: fusion, logreg, ...) are not used, from its fusion
    network's training ``notes`` and ``modalities`` (a locked model's ``stage_model.json`` "notes" / "modalities"):
    trained without a CT manifest (``CT_NOT_GIVEN_NOTE``; retrain with --ct), trained without the CT branch
    (--modalities), else none of its training patients had a CT (also a model saved before these notes).  The one
    text of ``lungai stage predict`` / ``validate``'s warning and the Slicer panel's stage result (QA stage3_65: a
    model trained with no --ct was said to have had no training patient with a CT)."""
    if CT_NOT_GIVEN_NOTE in list(notes or ()):
        return (f"{model} was trained without a CT manifest (`lungai stage train` was given no --ct); "
                "retrain it with --ct to use CTs")
    if modalities is not None and "ct" not in list(modalities):
        return (f"{model} was trained without CT (--modalities left ct out); retrain it with --modalities "
                "including ct (and --ct) to use CTs")
    return f"{model} was not trained with CT (no training patient had one)"
