"""``lungai stage``: NSCLC stage classification by intermediate fusion of CT, RNA-seq and EHR.

Sub-commands: ``synth`` (write a synthetic multimodal cohort), ``cv`` (nested stratified k-fold CV of
baseline and fusion), ``train`` (lock a model), ``validate`` (apply a locked model to an external
labelled cohort), ``predict`` (class probabilities per patient, optional explanations).
"""

from __future__ import annotations

from lungai.cli.radiomics import real_number, seed_number, whole_number
from lungai.fusion import CV_FOLDS, CV_INNER_FOLDS, SYNTH_MODULE_SIZE


def _whole(minimum: int, fix: str):
    """argparse type: a whole number >= ``minimum`` (else refused with ``fix``; before, 0 or a negative value
    crashed deep in training - --epochs 0, --folds 1, --seed -1 - or was used silently - --top-k 0)."""
    return lambda text: whole_number(text, minimum, fix)


def _real(low, high, fix: str, low_open: bool = False, high_open: bool = False):
    return lambda text: real_number(text, low, high, fix, low_open=low_open, high_open=high_open)


SEED = seed_number


def _data_args(p, label: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--ehr", help="EHR table (CSV/TSV), one row per patient")
    g.add_argument("--rna", help="RNA matrix (genes x patients or patients x genes; detected)")
    g.add_argument("--ct", help="CT manifest CSV: id,image,mask[,label] (paths relative to the manifest; label: the "
                               "tumour's label in a label-map mask)")
    g.add_argument("--ct-label", type=int, default=None, metavar="N",
                   help="the tumour's label in the CT manifest's masks, for rows without a 'label' value (a mask "
                        "with several labels, e.g. 1 = GTV, 3 / 4 = lungs, is refused without one)")
    g.add_argument("--id-column", help="patient-ID column of the EHR table (default: 'Case ID', 'patient_id', "
                                       "... or the first column)")
    if label:
        g.add_argument("--label", help="label column of the EHR table (e.g. 'Pathological T stage')")
        g.add_argument("--label-groups", help='merge label values: "T1=Tis,T1a,T1b;T2=T2a,T2b;T3-4=T3,T4"')
        g.add_argument("--stage-from", help="derive the AJCC overall stage group (I / II / III-IV) from "
                                            "three columns 'T col,N col,M col' (they are then not features)")
        g.add_argument("--stage0", choices=["I", "exclude"], default=None,
                       help="with --stage-from: Tis N0 M0 (AJCC stage 0, carcinoma in situ) is class I (default) or "
                            "left out (no label)")
        g.add_argument("--keep-column", action="append", default=[], metavar="COLUMN",
                       help="keep an EHR column the label-leak check flags as a copy of the label (repeatable; it "
                            "stays a feature, with a warning), or a second patient-id-named column "
                            "('Record ID', 'MRN': left out otherwise), or a site / hospital column "
                            "('Patient affiliation': warned of otherwise, said once as kept on request) - only when "
                            "it is deliberately a feature")
    g.add_argument("--drop", action="append", default=[], metavar="COLUMN",
                   help="EHR column to leave out of the features (repeatable), e.g. outcomes or leaks")


def _model_args(p) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--fusion", default="concat", choices=["concat", "simple", "weighted"],
                   help="concatenation or modality attention (simple / modality-weighted)")
    g.add_argument("--modalities", default="ehr,rna,ct", help="comma list of ehr, rna, ct: the fusion network's branches, and the only "
                   "inputs the baselines see (default ehr,rna,ct)")
    g.add_argument("--top-k", type=_whole(1, "give how many genes to keep (>= 1)"), default=2000, help="top-variance genes kept in each training fold")
    g.add_argument("--gene-variances", metavar="FILE",
                   help="CSV gene,variance of the RAW expression: rank genes by it for --top-k (needed when the "
                        "--rna matrix is per-gene standardised / z-scored; without it all genes of such a matrix "
                        "are kept, with a warning)")
    g.add_argument("--neighbours", type=_whole(1, "give the number of co-expression neighbours per gene (>= 1)"), default=8, help="co-expression graph degree")
    g.add_argument("--edges", help="gene edge list CSV (gene_a,gene_b; header row optional) instead of the co-expression graph")
    g.add_argument("--epochs", type=_whole(1, "give the number of training epochs (>= 1)"), default=80, help="training epochs (the maximum with --val-fraction)")
    g.add_argument("--val-fraction", type=_real(0, 1, "give a fraction from 0 (no early stopping) up to, not including, 1", high_open=True), default=0.0,
                   help="> 0: hold out this stratified part of the training data for early stopping "
                        "(0 = train on all of it for --epochs; better on small cohorts, see docs/stage.md)")
    g.add_argument("--patience", type=_whole(1, "give the early-stopping patience in epochs (>= 1)"), default=20, help="early-stopping patience (epochs)")
    g.add_argument("--stop-on", default="loss", choices=["loss", "f1"], help="early-stopping criterion")
    g.add_argument("--lr", type=_real(0, None, "give a positive learning rate, e.g. 3e-3", low_open=True), default=3e-3,
                   help="the fusion network's learning rate (Adam; default 3e-3)")
    g.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the folds, the networks and the baselines (0 to 4294967295; default 0)")
    g.add_argument("--baselines", default="logreg,forest,mlp",
                   help="plain scikit-learn baselines compared with the fusion on the same inputs (EHR + tumour "
                        "image features + top-k genes as one table, each where --modalities has it): comma list of "
                        "logreg (L2 multinomial logistic regression), forest (random forest), mlp; 'none' for no "
                        "comparison")
    g.add_argument("--fusion-grid", default=None,
                   help="fusion types the inner CV chooses from (comma list of concat, simple, weighted; default "
                        "concat,weighted); one value = no choice, which saves inner-CV fits of the network; not used "
                        "with --inner-folds 1 (then --fusion is trained)")
    g.add_argument("--inner-folds", type=_whole(1, "give the number of inner folds (>= 2), or 1 for no nesting"),
                   default=CV_INNER_FOLDS,
                   help="inner stratified folds that pick each model's hyper-parameters and the model to lock "
                        "(best macro-F1); 1 = no nesting: the given options, no model choice")


def register(sub) -> None:
    p = sub.add_parser("stage", help="NSCLC stage classification (CT + RNA-seq + EHR fusion)",
                       description="Intermediate fusion of a 3D CNN (CT), a graph attention network (RNA) "
                                   "and an MLP (EHR), compared with plain scikit-learn baselines (logistic regression, "
                                   "random forest, MLP) in nested CV; explanations.")
    s = p.add_subparsers(dest="stage_command", required=True, metavar="SUBCOMMAND")

    q = s.add_parser("synth", help="write a synthetic multimodal cohort with known signal")
    q.add_argument("-o", "--output", required=True,
                   help="output folder (ehr.csv, rna.csv, manifest.csv, ct/, truth.json)")
    q.add_argument("--patients", type=_whole(3, "give the number of patients (>= 3: one per stage class)"),
                   default=90, help="patients (>= 3, a third per stage class I / II / III; default 90)")
    q.add_argument("--genes", type=_whole(SYNTH_MODULE_SIZE, f"give the number of genes (>= {SYNTH_MODULE_SIZE}: "
                                                           "the planted module's size)"),
                   default=200, help=f"genes of the RNA matrix (>= {SYNTH_MODULE_SIZE}, the planted module's size; "
                                     "default 200)")
    q.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the patients (0 to 4294967295; default 0)")
    q.add_argument("--biology-seed", type=SEED, default=None,
                   help="seed of the gene module / expression structure (default --seed); give the training "
                        "cohort's seed to make an external cohort of the same 'disease'")
    q.set_defaults(func=_run("synth"))

    q = s.add_parser("cv", help="stratified nested k-fold CV of the fusion and the baselines, with nested "
                                "model selection -> DIR/metrics.json, DIR/comparison.md")
    _data_args(q)
    _model_args(q)
    q.add_argument("-o", "--output", required=True, help="output folder")
    q.add_argument("--folds", type=_whole(2, "give the number of outer CV folds (>= 2)"), default=CV_FOLDS,
                   help=f"outer stratified CV folds (>= 2; default {CV_FOLDS})")
    q.add_argument("--single-modality", action="store_true", help="also score each branch alone")
    q.set_defaults(func=_run("cv"))

    q = s.add_parser("train", help="fit the fusion and the baselines on a whole cohort and lock the one that "
                                   "wins the inner CV (macro-F1)")
    _data_args(q)
    _model_args(q)
    q.add_argument("-o", "--output", required=True, help="model folder to create")
    q.set_defaults(func=_run("train"))

    for name, helptext in (("validate", "apply a locked model to an external labelled cohort"),
                           ("predict", "class probabilities per patient from a locked model")):
        q = s.add_parser(name, help=helptext)
        q.add_argument("--model", required=True, help="locked model folder (from `lungai stage train`)")
        _data_args(q, label=name == "validate")
        q.add_argument("-o", "--output", required=True, help="output folder")
        q.add_argument("--max-missing-genes", type=_real(0, 1, "give a fraction from 0 to 1 of the model's genes"), default=0.5,
                       help="largest fraction of model genes that may be missing (imputed as the mean)")
        if name == "validate":
            q.add_argument("--include-training-patients", action="store_true",
                           help="also score patients the model was trained on (left out by default: their scores are "
                                "in-sample; the metrics are then labelled as not an external validation)")
        if name == "predict":
            q.add_argument("--use", choices=["fusion", "logreg", "forest", "mlp"],
                           help="predict with this locked model instead of the selected one (stage_model.json)")
            q.add_argument("--explain", action="store_true",
                           help="also write top-10 genes per patient and Grad-CAM volumes")
        q.set_defaults(func=_run(name))


def _load_modules(name: str, args=None) -> None:
    """The modules of ``stage cv / train / validate / predict`` imported on a bar of their own, each step said with
    its seconds while it stands (:func:`lungai.progress.timer_running`): pandas; torch, MONAI and scikit-learn (the
    fusion pipeline, the model files); torch-geometric (the RNA branch's graph attention network, imported when the
    first network is built) and skops (the locked baselines, imported when a model folder is read).  QA stage70: on a
    shared 2-core machine ``stage predict`` on NSCLC-Radiogenomics wrote its first line 27 s after the command,
    ``stage train`` 15 s, and the first epoch line stood 7-9 s behind 'fusion on all 162 patients' - no line at all
    (as ``lungai segment`` / ``train-seg`` load torch on a bar, docs/segmentation.md).  ``cv / train / validate``
    read the EHR table's labels once pandas is there, before torch (:func:`lungai.fusion.workflows.check_labels_early`:
    a table without a labelled patient refused at once, QA docs71)."""
    from lungai.progress import load_modules

    steps = [("loading pandas", ("pandas",))]
    if name in ("cv", "train", "validate") and args is not None and getattr(args, "ehr", None):
        def labels():
            from lungai.fusion.workflows import check_labels_early

            check_labels_early(args, name)
        steps.append(("reading the EHR table's labels", (labels,)))
    load_modules(f"stage {name}: loading",
                 (*steps,
                  ("loading torch, MONAI and scikit-learn",
                   ("torch", "lungai.fusion.model_io", "lungai.fusion.explain")),
                  ("loading torch-geometric and skops", ("torch_geometric.nn", "skops.io"))))
    from lungai.cli import freeze_loaded_modules

    freeze_loaded_modules()     # the command's collections and its end trace the modules' objects no more


# the table options of ``stage cv / train / validate / predict``: what each takes, for a folder given instead
TABLE_OPTIONS = (("--ehr", "ehr", "the EHR table's CSV / TSV file"),
                 ("--rna", "rna", "the RNA matrix's CSV / TSV file"),
                 ("--ct", "ct", "the CT manifest's CSV file (id,image,mask)"),
                 ("--gene-variances", "gene_variances", "the gene variances' CSV file (gene, raw variance)"),
                 ("--edges", "edges", "the gene edge list's CSV file (gene_a,gene_b)"))


def check_inputs(args, command: str) -> None:
    """The command line's paths checked before the heavy imports (:func:`_load_modules`, 15-30 s on a shared
    machine): the output is not a file or under one, each input path is there
    (:func:`lungai.paths.check_input_paths`, naming the option), a table option names a file, not a folder,
    ``--model`` holds a stage_model.json, at least one table is given, and the output folder of ``lungai stage
    <command>`` holds no file of the user's of its output names (:func:`lungai.fusion.outputs.check_output_dir`: never
    overwritten).  QA stage71: ``stage train --ehr /nonexistent.csv`` was refused after 33 s (pandas, torch, MONAI,
    scikit-learn, torch-geometric and skops imported first), ``stage predict --model /nonexistent`` after 25 s; QA
    stagefollow71: a ``metrics.json`` of the user's in ``stage cv -o DIR`` after 21.3 s."""
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.fusion import check_input_given
    from lungai.paths import check_folder_path, check_input_paths

    check_folder_path(args.output)      # an output under a file first, as before (its owner: after the imports)
    stage0 = getattr(args, "stage0", None)
    if stage0 and not getattr(args, "stage_from", None):
        # QA stagefollow72: `--stage0 exclude` with --label (no --stage-from) was ignored without a word: the 6 stage-0
        # patients stayed in the cohort
        raise InputError(f"--stage0 {stage0} is given without --stage-from: it applies only to the stage group "
                         "derived from the T, N and M columns, so it would be ignored",
                         "add --stage-from 'T column,N column,M column' (the stage group then being the label), or "
                         "leave out --stage0 (with --label the column's own values are the classes)")
    model = getattr(args, "model", None)
    tables = [(option, getattr(args, attr, None), what) for option, attr, what in TABLE_OPTIONS]
    check_input_paths([("--model", model)] + [(option, value) for option, value, _ in tables])
    for option, value, what in tables:
        if value and Path(value).is_dir():
            raise InputError(f"{option} {value} is a folder, not a table file", f"give {what} itself")
    if model:
        from lungai.fusion.balance import check_stage_model_folder

        check_stage_model_folder(model, "--model")
    check_input_given(args.ehr, args.rna, args.ct)
    from lungai.fusion.outputs import check_output_dir

    check_output_dir(Path(args.output), command, [args.ehr, args.rna, args.ct, model])   # as the workflow's own check


def _load_synth_modules(args) -> None:
    """``stage synth``: its output folder checked (a user's file of an output name refused, as the workflow's own
    check), then pandas and SimpleITK loaded on a bar of their own, as the other stage commands' (QA synthbar72, a
    shared 2-core machine: the first line, the cohort's CT bar, came 1.2-1.5 s after the command, 10 s with
    ``--genes 20000 --patients 300``; the EHR table and the RNA matrix are drawn and written on a bar of their own
    now, :func:`lungai.fusion.synthetic.make_cohort`)."""
    from lungai.fusion import COHORT_OUTPUTS
    from lungai.io.outputs import prepare_output_folder
    from lungai.progress import load_modules

    prepare_output_folder(args.output, owner="stage-synth", owns=COHORT_OUTPUTS, create=False)
    load_modules("stage synth: loading", (("loading pandas", ("pandas",)),
                                          ("loading SimpleITK", ("lungai.fusion.synthetic", "lungai.fusion.workflows"))))


def _run(name):
    def run(args):
        if name == "synth":
            _load_synth_modules(args)
        else:
            check_inputs(args, name)       # a mistyped path or a user's file in -o refused at once, not after imports
            _load_modules(name, args)
        from lungai.fusion import workflows

        return getattr(workflows, f"run_{name}")(args)
    return run
