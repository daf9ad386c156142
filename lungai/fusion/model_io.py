"""Locked models on disk, no pickle: safetensors (torch weights, gene statistics, graph),
skops (scikit-learn EHR encoders and the tabular baselines) and JSON (everything else).

A model folder holds ``stage_model.json`` (the model card: classes, config, which model is
``selected`` and the comparison it was selected by), ``fusion.safetensors``, ``ehr_encoder.skops``
(when the EHR branch is used) and ``baseline_<kind>.skops`` per locked baseline (logreg, forest,
mlp).  skops files load only if every type in them is scikit-learn/numpy's default-trusted or on
:data:`TRUSTED_TYPES`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lungai.errors import InputCheckNote, InputError, InputNote, agree, counted
from lungai.model_files import (IN_SAMPLE_TEMPLATE, LOOSE_MATCH_NOTE, dump_skops, in_sample_patients,  # noqa: F401
                               load_safetensors, load_skops, training_patients)
from lungai.model_files import external_notes, without_named_ids  # noqa: F401  (without_named_ids: as before)
from lungai.model_files import external_patients as shared_external_patients
from lungai.fusion.balance import EXTERNAL_TEXTS, META, RARE_CLASS_SHARE, STAGE_FIX, check_stage_model_folder, \
    class_balance_lines, class_counts_text  # noqa: F401
from lungai.fusion.baseline import KINDS, BaselinePipeline
from lungai.fusion.outputs import OUTPUTS, check_output_dir, claimed  # noqa: F401 - light: stage checks -o with them
from lungai.fusion.models.fusion import FusionModel
from lungai.fusion.pipeline import FusionConfig, FusionPipeline
from lungai.fusion.preprocess import EHREncoder, GeneSelector

FORMAT = "lungai-stage-model"
VERSION = 2
# Types outside skops' default trusted set that a stage model legitimately contains (exact names,
# never prefixes: "builtins." would let builtins.exec through; lungai.model_files).
TRUSTED_TYPES = [
    "lungai.io.impute.SmokersMedianImputer",     # the EHR encoder's median imputer (a smoker's pack-years: smokers')
    "numpy.dtype",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
]


def _skops_load(path: Path):
    return load_skops(path, TRUSTED_TYPES, "stage model file", "only load model folders written by `lungai stage train`")


def save(out_dir, pipeline: FusionPipeline, baselines: Optional[dict] = None, selected: str = "fusion",
         extra: Optional[dict] = None) -> Path:
    """Lock the fusion pipeline and the baselines ({kind: BaselinePipeline}); ``selected`` names the
    model that ``stage predict`` uses by default."""
    from lungai.model_files import save_safetensors

    out = check_output_dir(Path(out_dir), "train")       # inside claimed(): an earlier run's files are gone
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in pipeline.model.state_dict().items()}
    tensors["graph.edge_index"] = torch.as_tensor(pipeline.edges, dtype=torch.long).contiguous()
    if pipeline.genes is not None:
        for k, v in pipeline.genes.tensors().items():
            tensors[f"genes.{k}"] = torch.tensor(np.array(v, np.float32))
    save_safetensors(tensors, out / "fusion.safetensors")
    if pipeline.ehr_encoder is not None and pipeline.ehr_encoder.transformer is not None:
        dump_skops(pipeline.ehr_encoder.transformer, out / "ehr_encoder.skops")
    meta = {"format": FORMAT, "version": VERSION, "classes": pipeline.classes,
            "config": pipeline.config.to_json(), "modalities": pipeline.modalities,
            "ehr": pipeline.ehr_encoder.to_json() if pipeline.ehr_encoder else None,
            "genes": pipeline.genes.to_json() if pipeline.genes else None,
            "notes": pipeline.notes, "history": {k: v for k, v in pipeline.history.items() if k != "train_loss"},
            "selected": selected, "baselines": {}}
    for kind, b in (baselines or {}).items():
        dump_skops(b.parts(), out / f"baseline_{kind}.skops")
        meta["baselines"][kind] = b.to_json()
    if selected != "fusion" and selected not in meta["baselines"]:
        raise ValueError(f"selected model {selected!r} is not among the locked models")
    meta.update(extra or {})
    (out / META).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return out


# ------------------------------------------------------------------------------ training patients (no plain IDs)
# (the salted ID hashes and the overlap rule: lungai.model_files.training_patients / external_patients)
# the cohort report's entries that list patient IDs: the model keeps their counts only
_ID_LISTS = ("unlabelled", "rna_not_joined", "ct_not_joined", "rna_not_in_ehr", "ct_not_in_ehr", "stage0_ids")


def cohort_record(cohort) -> dict:
    """What a locked model records of its training cohort (``training_cohort``: the cohort report with counts in
    place of any list of patient IDs; ``training_patients``: the salted hashes of :func:`training_patients`)."""
    report = {k: (len(v) if k in _ID_LISTS and isinstance(v, (list, tuple, set)) else v)
              for k, v in cohort.report.items() if not k.endswith("_zeros")}     # *_zeros: a hint quoting IDs
    return {"training_cohort": report, "training_patients": training_patients(cohort.ids)}


def external_patients(meta: dict, cohort, include_training: bool = False) -> tuple:
    """(cohort, record, notes) for ``lungai stage validate``: the cohort less the locked model's training patients
    (:func:`lungai.model_files.external_patients`: the rule, the record for metrics.json and the notes).  Each note an
    :class:`lungai.errors.InputNote` ("warning: ...": the training patients scored, the metrics not external) or
    :class:`lungai.errors.InputCheckNote` ("note: ..."), with its ``without_ids`` form: the patients it names left
    out, only counted (:func:`lungai.model_files.external_notes`, shared with ``rp validate``)."""
    from lungai.fusion.data import recount

    ids = list(cohort.ids)
    kept, record, notes = shared_external_patients(meta, ids, include_training, **EXTERNAL_TEXTS)
    if len(kept) < len(cohort.ids):
        cohort = recount(cohort.subset(kept))
    return cohort, record, external_notes(notes, record, ids)


# the in-sample marks of stage predict (lungai.model_files.in_sample_patients: one rule for stage and rp predict)
STAGE_IN_SAMPLE = {"fitted": "stage", "honest": "`lungai stage cv`", "train": "`lungai stage train`",
                   "column": "notes"}
IN_SAMPLE_NOTE = IN_SAMPLE_TEMPLATE.format(fitted=STAGE_IN_SAMPLE["fitted"], honest=STAGE_IN_SAMPLE["honest"])


def training_patient_flags(meta: dict, ids) -> tuple:
    """(flags, notes, warning) of :func:`lungai.model_files.in_sample_patients` for stage predictions of the patients
    ``ids`` by a locked model (``meta``: its stage_model.json)."""
    return in_sample_patients(meta, ids, **STAGE_IN_SAMPLE)


def _first_line(exc: Exception) -> str:
    """The exception's first telling line (torch's "Error(s) in loading state_dict for ...:" heads the line that
    says what: "size mismatch for ...")."""
    lines = [t.strip() for t in str(exc).strip().splitlines() if t.strip()]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _baseline_kinds(d: Path, meta: dict) -> dict:
    """stage_model.json's ``baselines`` ({kind: description}): every key must be one of :data:`KINDS` (a key names
    the file ``baseline_<kind>.skops`` read from the folder: nothing else, never a path elsewhere)."""
    base = meta.get("baselines") or {}
    if not isinstance(base, dict):
        raise InputError(f"{d / META}: 'baselines' is a {type(base).__name__}, not a table of baseline models",
                         STAGE_FIX)
    for kind in base:
        if kind not in KINDS:
            raise InputError(f"{d / META} names a baseline model {kind!r} that lungai does not have (the kinds are "
                             f"{', '.join(KINDS)}); lungai reads only baseline_<kind>.skops of those kinds from the "
                             "model folder", STAGE_FIX)
    return base


def _tensor(tensors: dict, name: str, path: Path):
    if name not in tensors:
        raise InputError(f"the stage model weights {path} lack the tensor {name!r}", STAGE_FIX)
    return tensors[name]


def _graph_edges(edge_index: torch.Tensor, genes, path: Path) -> np.ndarray:
    """The gene graph saved in ``path``, checked before the network is built: ``graph.edge_index`` a 2 x E integer
    tensor whose node numbers are genes of the model (0 <= n < number of genes; no genes, no RNA branch: no edges),
    and ``genes.gene_mean`` / ``genes.gene_sd`` one value per gene.  An edited file would otherwise stop in
    torch_geometric with an IndexError, or silently read another gene's statistics."""
    n_genes = len(genes.genes) if genes is not None else 0
    e = edge_index
    if e.dim() != 2 or e.shape[0] != 2 or e.dtype.is_floating_point or e.dtype.is_complex or e.dtype == torch.bool:
        raise InputError(f"the stage model weights {path}: graph.edge_index is a {e.dtype} tensor of shape "
                         f"{tuple(e.shape)}, not 2 x E integer node numbers (the gene graph's edges)", STAGE_FIX)
    if e.numel() and (int(e.min()) < 0 or int(e.max()) >= n_genes):
        nodes = "" if n_genes == 0 else " (0)" if n_genes == 1 else f" (0 to {n_genes - 1})"
        raise InputError(f"the stage model weights {path}: graph.edge_index holds node numbers from {int(e.min())} to "
                         f"{int(e.max())}; the gene graph has {counted(n_genes, 'node')}{nodes}", STAGE_FIX)
    if genes is not None:
        for name, values in (("gene_mean", genes.mean), ("gene_sd", genes.sd)):
            if np.shape(values) != (n_genes,):
                raise InputError(f"the stage model weights {path}: genes.{name} has shape {np.shape(values)}, not one "
                                 f"value per gene of the model ({n_genes})", STAGE_FIX)
    return e.to(torch.long).numpy()


def load(model_dir):
    """(FusionPipeline, {kind: BaselinePipeline}, metadata dict); ``meta["selected"]`` names the
    model to predict with (:func:`chosen`).  A damaged or edited folder (stage_model.json not JSON or missing a
    field, weights that do not fit the network it describes, a tensor missing, NaN / infinite weights, a baseline
    kind lungai does not have) is an :class:`InputError` naming the file and the problem."""
    d = Path(model_dir)
    meta = check_stage_model_folder(d)     # stage_model.json: there, a readable JSON object
    version = meta.get("version", 0)
    if meta.get("format") != FORMAT or not isinstance(version, int) or version > VERSION:
        raise InputError(f"{d / META} is not a stage model this version can read", "retrain with `lungai stage train`")
    baseline_meta = _baseline_kinds(d, meta)
    weights = d / "fusion.safetensors"
    tensors = load_safetensors(weights, "stage model weights", STAGE_FIX)    # NaN / inf refused
    field = "config"
    try:
        config = FusionConfig.from_json(meta["config"])
        field = "classes"
        classes = meta["classes"]
        if not isinstance(classes, list) or not classes or not all(isinstance(c, (str, int)) for c in classes):
            raise ValueError(f"{classes!r} is not a list of class names")
        pipe = FusionPipeline(config, classes)
        field = "modalities"
        pipe.modalities, pipe.notes = list(meta["modalities"]), list(meta.get("notes") or [])
        field = "ehr"
        pipe.ehr_encoder = (EHREncoder.from_json(meta["ehr"], _skops_load(d / "ehr_encoder.skops"))
                            if meta.get("ehr") else None)
        field = "genes"
        if meta.get("genes"):
            pipe.genes = GeneSelector.from_saved(meta["genes"], {k: _tensor(tensors, f"genes.{k}", weights).numpy()
                                                                 for k in ("gene_mean", "gene_sd")})
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{d / META}: its {field!r} is not usable ({_first_line(exc)})", STAGE_FIX) from None
    pipe.edges = _graph_edges(_tensor(tensors, "graph.edge_index", weights), pipe.genes, weights)
    cfg = pipe.config
    try:
        pipe.model = FusionModel(len(pipe.classes), pipe.modalities,
                                 ehr_dim=pipe.ehr_encoder.n_features if pipe.ehr_encoder else 0,
                                 n_genes=len(pipe.genes.genes) if pipe.genes else 0, edge_index=pipe.edges,
                                 emb=cfg.emb, fusion=cfg.fusion, dropout=cfg.dropout)
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        pipe.model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # e.g. size mismatch
        raise InputError(f"the weights {weights} do not fit the network {d / META} describes "
                         f"({_first_line(exc)})", STAGE_FIX) from None
    pipe.model.eval()
    baselines = {}
    for kind, b in baseline_meta.items():
        parts = _skops_load(d / f"baseline_{kind}.skops")
        try:
            baselines[kind] = BaselinePipeline.from_saved(meta["classes"], b, parts)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(f"{d / META}: its baseline {kind!r} is not usable ({_first_line(exc)})",
                             STAGE_FIX) from None
    meta.setdefault("selected", "fusion")
    return pipe, baselines, meta


def chosen(pipe: FusionPipeline, baselines: dict, meta: dict, use: Optional[str] = None) -> tuple:
    """(name, model) to predict with: ``use`` or the locked model's selected one."""
    name = use or meta.get("selected", "fusion")
    models = {"fusion": pipe, **baselines}
    if name not in models:
        raise InputError(f"model {name!r} is not in this locked model folder (it holds {', '.join(models)})",
                         f"choose one of: {', '.join(models)}")
    return name, models[name]


MOST_GENES_MISSING = 0.5   # a patient lacking more than this share of the model's genes is named (rna_gene_check)
# A patient whose typical gene (the median over the model's genes of |value - training mean| / training SD) lies more
# than this many training SDs away is on another scale than the training matrix (rna_gene_check).  On
# NSCLC-Radiogenomics the training-scale patients give 0.42-1.05; the same profiles as log2-like values (x 1.5 + 7)
# 5.5-7.6, and the model then predicted one class with p ~ 1 for every patient, without a word.
OFF_SCALE_Z = 3.0


def _typical_z(pipe: FusionPipeline, rna) -> dict:
    """{patient: median over the model's genes of |z|} (z with the training mean / SD of :attr:`pipe.genes`), for the
    patients with at least one value of them."""
    z = (pipe.genes.model_columns(rna).to_numpy(np.float64) - pipe.genes.mean) / pipe.genes.sd
    z = np.abs(z)
    have = ~np.isnan(z).all(axis=1)
    typical = np.full(len(z), np.nan)
    if have.any():
        typical[have] = np.nanmedian(z[have], axis=1)
    return {str(p): float(v) for p, v in zip(rna.index, typical) if np.isfinite(v)}


def rna_gene_check(pipe: FusionPipeline, rna, max_missing: float = 0.5) -> dict:
    """How many of the locked model's genes the new RNA matrix lacks; they are imputed as 0
    (= the training mean z-score).  Raises when more than ``max_missing`` of them are missing.  ``sparse``:
    {patient: share of the model's genes missing} for the patients lacking more than :data:`MOST_GENES_MISSING` of
    them (missing values or genes absent from the matrix): predicted with RNA, but mostly from the training means
    (a patient lacking every value has no RNA at all: :func:`lungai.fusion.data.orient_rna`).  ``off_scale``:
    {patient: typical |z|} for the patients whose values lie on another scale than the training matrix's (more than
    :data:`OFF_SCALE_Z` training SDs from the training means for the typical gene: log2 expression given to a model
    trained on z-scores, or the reverse); raises when they are more than half of the patients with RNA - the matrix
    is normalised otherwise, and every prediction from it would be wrong without a word."""
    if pipe.genes is None or rna is None:
        return {"n_model_genes": len(pipe.genes.genes) if pipe.genes else 0, "missing": [], "sparse": {},
                "off_scale": {}, "version_matched": {}}
    missing = pipe.genes.missing_genes(rna)     # a gene under another Ensembl version is found (version_matched)
    n = len(pipe.genes.genes)
    share = pipe.genes.model_columns(rna).isna().mean(axis=1)
    sparse = {str(p): float(v) for p, v in share.items() if v > MOST_GENES_MISSING}
    if len(missing) > max_missing * n:
        cased = case_variants(missing, rna.columns)
        raise InputError(f"{len(missing)} of the model's {n} genes are missing from the RNA matrix "
                         f"(e.g. {', '.join(missing[:5])}){case_text(cased)}",
                         ("write the gene symbols as at training, in the same letter case; " if cased else "")
                         + "check that gene identifiers match the training cohort (same symbols), "
                         f"or allow more with --max-missing-genes (now {max_missing:g})")
    typical = _typical_z(pipe, rna)
    off_scale = {p: v for p, v in typical.items() if v > OFF_SCALE_Z}
    if typical and len(off_scale) > len(typical) / 2:
        trained = ("a per-gene standardised (z-scored) matrix" if getattr(pipe.genes, "standardised", None)
                   else "its training matrix")
        raise InputError(f"the RNA matrix is not on the scale of the model's training data: for {len(off_scale)} of "
                         f"{len(typical)} patients the typical gene lies more than {OFF_SCALE_Z:g} training SDs from "
                         f"its training mean ({off_scale_examples(off_scale)}; about 0.5-1 for data normalised as the "
                         f"training matrix) - e.g. log2 expression given to a model trained on {trained}, or the "
                         "reverse; every prediction from it would be wrong",
                         "give the RNA values normalised as the training matrix was (the same transform, e.g. log2 "
                         "TPM, and the same per-gene z-scoring, if any)")
    return {"n_model_genes": n, "missing": missing, "sparse": sparse, "off_scale": off_scale,
            "version_matched": pipe.genes.version_matched(rna)}


def check_new_rna(pipe: FusionPipeline, rna, max_missing: float = 0.5) -> Optional[dict]:
    """:func:`rna_gene_check` of a new cohort's RNA matrix, for ``stage predict`` / ``validate`` and the Python API
    (:func:`lungai.fusion.api.predict_stage`): refuses a matrix lacking most of the model's genes or on another scale
    than the training matrix, and warns about the genes missing, the patients lacking most genes and those on
    another scale.  None when the model has no genes or there is no matrix."""
    if pipe.genes is None or rna is None:
        return None
    check = rna_gene_check(pipe, rna, max_missing)
    if check["version_matched"]:
        warnings.warn(InputCheckNote(version_matched_text(check)))
    if check["missing"]:
        warnings.warn(InputNote(f"{len(check['missing'])} of the model's {check['n_model_genes']} genes are "
                                f"missing from the RNA matrix ({', '.join(check['missing'][:10])}"
                                f"{' ...' if len(check['missing']) > 10 else ''}); they are imputed as the training "
                                f"mean (z = 0){case_text(case_variants(check['missing'], rna.columns))}"))
    if check["sparse"]:
        warnings.warn(InputNote(sparse_rna_text(check)))
    if check["off_scale"]:
        warnings.warn(InputNote(off_scale_text(check)))
    return check


def case_variants(missing, columns) -> dict:
    """{model gene: matrix column} for the model's ``missing`` genes that the RNA matrix (``columns``: its genes) has
    in another letter case only ('tor1aip1' for TOR1AIP1, one such column).  They stay missing - gene symbols are
    matched as written (case tells genes apart: human TP53, mouse Trp53) - but the message says so."""
    folded: dict = {}
    for c in columns:
        folded.setdefault(str(c).casefold(), []).append(str(c))
    return {g: folded[str(g).casefold()][0] for g in missing if len(folded.get(str(g).casefold(), ())) == 1}


def case_text(cased: dict) -> str:
    """:func:`case_variants` in words, to follow a 'genes are missing' message ('' when none)."""
    if not cased:
        return ""
    shown = ", ".join(f"{c} for {g}" for g, c in list(cased.items())[:3])
    return (f"; {len(cased)} of them {'is' if len(cased) == 1 else 'are'} in the matrix in another letter case ({shown}"
            f"{' ...' if len(cased) > 3 else ''}): gene symbols are matched as written")


def version_matched_text(check: dict) -> str:
    """The genes of :func:`rna_gene_check`'s ``version_matched`` in words ('' when none): a note
    (:class:`lungai.errors.InputCheckNote`, printed ``note: ...``)."""
    from lungai.fusion.preprocess import unversioned

    found = check.get("version_matched") or {}
    ensembl = {g: c for g, c in found.items() if unversioned(g) == unversioned(c)}
    symbols = {g: c for g, c in found.items() if g not in ensembl}      # TCGA's 'SYMBOL|Entrez' (gene_columns)
    said = []
    if ensembl:
        shown = ", ".join(f"{g} as {c}" for g, c in list(ensembl.items())[:5])
        said.append(f"{len(ensembl)} of the model's {check['n_model_genes']} genes were found by their Ensembl ID "
                    f"without the version ({shown}{' ...' if len(ensembl) > 5 else ''}): the RNA matrix is from another "
                    "annotation (GENCODE) release than the training matrix")
    if symbols:
        shown = ", ".join(f"{g} as {c}" for g, c in list(symbols.items())[:5])
        said.append(f"{len(symbols)} of the model's {check['n_model_genes']} genes were found by the gene symbol of "
                    f"a TCGA-style 'SYMBOL|Entrez' name ({shown}{' ...' if len(symbols) > 5 else ''}): matched on the "
                    "symbol, the part before '|' (a symbol under two Entrez IDs is refused)")
    return "; ".join(said)


def off_scale_examples(off_scale: dict) -> str:
    """'median |z| 6.7: R01-003 6.72, R01-004 6.31 ...' for :func:`rna_gene_check`'s ``off_scale``."""
    shown = ", ".join(f"{p} {v:.2f}" for p, v in list(off_scale.items())[:5])
    return f"median |z| {np.median(list(off_scale.values())):.1f}: {shown}{' ...' if len(off_scale) > 5 else ''}"


def off_scale_text(check: dict) -> str:
    """The patients of :func:`rna_gene_check`'s ``off_scale`` in words ('' when none)."""
    off = check.get("off_scale") or {}
    if not off:
        return ""
    their = agree(len(off), "its", "their")
    return (f"{counted(len(off), 'patient')} {agree(len(off), 'has', 'have')} RNA values on another scale than the "
            f"model's training data (the typical gene more than {OFF_SCALE_Z:g} training SDs from its training mean; "
            f"{off_scale_examples(off)}): {their} RNA input is far outside what the model learnt from - check how "
            f"{their} RNA was normalised")


def sparse_rna_text(check: dict) -> str:
    """The patients of :func:`rna_gene_check`'s ``sparse`` in words ('' when none)."""
    sparse = check.get("sparse") or {}
    if not sparse:
        return ""
    shown = ", ".join(f"{p} ({100 * v:.0f} %)" for p, v in list(sparse.items())[:20])
    their = agree(len(sparse), "its", "their")
    return (f"{counted(len(sparse), 'patient')} {agree(len(sparse), 'lacks', 'lack')} more than "
            f"{100 * MOST_GENES_MISSING:.0f} % of the model's {check['n_model_genes']} genes: {shown}"
            f"{' ...' if len(sparse) > 20 else ''} - {their} missing genes are imputed as the training mean (z = 0), "
            f"so {their} RNA input is mostly the average profile; check {their} RNA data")


def modality_counts_text(counts) -> str:
    """A training cohort's patients with each modality, e.g. "EHR 162, RNA 130, CT 0" (never a raw dict); "" when not
    recorded."""
    if not isinstance(counts, dict) or not counts:
        return ""
    return ", ".join(f"{str(m).upper()} {n}" for m, n in counts.items())


def card_markdown(meta: dict) -> str:
    """A human-readable summary of a locked stage model (``model_card.md``): what is locked, which
    model predictions use, and the comparison it was chosen by."""
    from lungai.fusion.baseline import LABELS, fusion_label, pipeline_branches
    from lungai.fusion.data import ehr_missing_text
    from lungai.fusion.metrics import majority_label, majority_lines
    from lungai.fusion.preprocess import left_out_text

    LABELS = {**LABELS, "fusion": fusion_label(pipeline_branches(meta["modalities"], meta.get("notes")),
                                               (meta.get("config") or {}).get("modalities", meta["modalities"]))}
    sel = meta.get("selection") or {}
    cohort = meta.get("training_cohort") or {}
    from lungai.fusion.synthetic import SYNTHETIC_NOTE
    from lungai.rp.predict import synthetic_model

    lines = [f"# Stage model ({', '.join(map(str, meta['classes']))})", "",
             *([f"**Warning: {SYNTHETIC_NOTE}.**", ""] if synthetic_model(meta) else []),   # every result illustrative
             f"- Selected model (used by `lungai stage predict`): **{LABELS.get(meta['selected'], meta['selected'])}**",
             f"- Why: {sel.get('verdict', 'no comparison recorded')}",
             f"- Rule: {sel.get('rule', 'n/a')}",
             f"- Training cohort: {cohort.get('n_patients', '?')} patients, classes "
             f"{class_counts_text(cohort.get('class_counts')) or '?'}, "
             f"with {modality_counts_text(cohort.get('with')) or 'EHR/RNA/CT ?'}",
             # how many EHR values imputed (none when the models leave the EHR out: --modalities)
             *([f"- {text}"] if (text := ehr_missing_text(
                 cohort, (meta.get("config") or {}).get("modalities", meta["modalities"]))) else []),
             *(f"- {line}" for line in class_balance_lines(meta)),
             f"- Fusion network modalities: {', '.join(meta['modalities'])}; notes: {'; '.join(meta.get('notes', [])) or 'none'}",
             *([f"- {text}"] if (text := left_out_text((meta.get("ehr") or {}).get("left_out") or {})) else []),
             *([f"- Genes: {len(g['genes'])} kept (--top-k {g.get('top_k')}), ranked by "
                f"{g.get('ranking', 'training-fold variance')}" + (f"; {g['note']}" if g.get("note") else "")]
               if (g := meta.get("genes")) else []),
             # the training run's warnings on its data (patient IDs counted, not named: workflows.run_train)
             *(f"- Warning (training data): {w}" for w in meta.get("warnings") or ()),
             # candidates that do not beat always answering the most common class (workflows.train_majority)
             *(f"- Warning: {w}" for w in sel.get("majority_warnings") or ()),
             "", "| model | hyper-parameters | inner-CV macro-F1 | inner-CV balanced accuracy | inner-CV accuracy |",
             "|---|---|---|---|---|"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for name, c in (sel.get("candidates") or {}).items():
        lines.append(f"| {LABELS.get(name, name)}{' (selected)' if name == meta['selected'] else ''} | "
                     f"{c.get('params')} | {fmt(c.get('inner_macro_f1'))} | {fmt(c.get('inner_balanced_accuracy'))} "
                     f"| {fmt(c.get('inner_accuracy'))} |")
    if ref := sel.get("majority_reference"):     # the trivial answer every model must beat
        lines.append(f"| reference: {majority_label(ref)} | - | {ref['macro_f1']:.3f} | "
                     f"{ref['balanced_accuracy']:.3f} | {ref['accuracy']:.3f} |")
    lines += [*(["", majority_lines(sel)[-1]] if ref and len(majority_lines(sel)) > 1 else []), "", "The inner-CV scores chose the model; they are not a performance estimate. "
                  "`lungai stage cv` estimates the performance of this whole procedure (its 'selected' row).",
              "", "`tsne.png` (its points in `tsne_points.csv`), `top_genes_cohort.csv` and "
                  "`top_genes_per_patient.csv` describe the fusion network on its training patients (in-sample: "
                  "the network was fitted on them), not on unseen patients; "
                  "`lungai stage predict --explain` gives the Shapley values of new patients."]
    return "\n".join(lines) + "\n"
