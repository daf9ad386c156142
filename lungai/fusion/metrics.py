"""Accuracy, balanced accuracy, macro-F1 and macro-AUC per fold, mean +- SD over folds and bootstrap 95 % CI.

The macro averages (F1, AUC; balanced accuracy = macro recall) are over the classes PRESENT among the true labels
scored - one rule for all three: a class no scored patient has would add an F1 of 0 (or no AUC at all), so the
averages would be over different classes.  With every class present (each CV fold) this is the plain macro average;
:func:`absent_classes` names the classes left out, for a warning."""

from __future__ import annotations

import warnings

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc")


def class_counts(y: np.ndarray, classes) -> dict:
    """{class: number of patients with that true label} (zeros included), in class order."""
    counts = np.bincount(np.asarray(y, int), minlength=len(classes))
    return {str(c): int(counts[k]) for k, c in enumerate(classes)}


def absent_classes(y: np.ndarray, classes) -> list:
    """The classes no patient of ``y`` has: the macro averages of :func:`scores` leave them out."""
    return [str(c) for c, n in class_counts(y, classes).items() if n == 0]


def scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    pred = proba.argmax(axis=1)
    present = np.unique(y)
    with warnings.catch_warnings():    # "y_pred contains classes not in y_true": the rule above, said by the caller
        warnings.filterwarnings("ignore", category=UserWarning, module=r"sklearn\.")
        out = {"accuracy": float(accuracy_score(y, pred)),
               "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
               "macro_f1": float(f1_score(y, pred, average="macro", labels=list(present), zero_division=0))}
    if len(present) < 2:
        out["macro_auc"] = float("nan")
    elif n_classes == 2:
        out["macro_auc"] = float(roc_auc_score(y, proba[:, 1]))
    else:
        # one-vs-rest AUC averaged over the classes present in y
        aucs = [roc_auc_score((y == c).astype(int), proba[:, c]) for c in present]
        out["macro_auc"] = float(np.mean(aucs))
    return out


def fast_scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    """The same three metrics with numpy only (confusion counts, Mann-Whitney AUC), for the bootstrap:
    scikit-learn's input validation makes 1000 resamples take ~10 s per model."""
    from scipy.stats import rankdata

    pred = proba.argmax(axis=1)
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = np.unique(y)
    aucs = []
    for c in (present if n_classes > 2 else present[-1:]):
        pos = y == c if n_classes > 2 else y == 1
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        r = rankdata(proba[:, c] if n_classes > 2 else proba[:, 1])
        aucs.append((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    rows = cm.sum(1)
    return {"accuracy": float(tp.sum() / len(y)), "balanced_accuracy": float((tp[rows > 0] / rows[rows > 0]).mean()),
            "macro_f1": float(f1[rows > 0].mean()),     # over the classes present in y, as scores()
            "macro_auc": float(np.mean(aucs)) if len(present) > 1 and aucs else float("nan")}


def summarise(fold_scores: list, y_all: np.ndarray, proba_all: np.ndarray, n_classes: int,
              n_boot: int = 1000, seed: int = 0) -> dict:
    """Per metric: folds, mean, SD (over folds) and a percentile-bootstrap 95 % CI on the pooled
    out-of-fold predictions."""
    rng = np.random.default_rng(seed)
    boot = {m: [] for m in METRICS}
    n = len(y_all)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        s = fast_scores(y_all[idx], proba_all[idx], n_classes)
        for m in METRICS:
            boot[m].append(s[m])
    pooled = scores(y_all, proba_all, n_classes)
    out = {}
    for m in METRICS:
        vals = np.array([f[m] for f in fold_scores], float)
        b = np.array(boot[m], float)
        b = b[~np.isnan(b)]
        out[m] = {"mean": float(np.nanmean(vals)), "sd": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else None,
                  "ci95": [float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))] if len(b) else [None, None],
                  "pooled": pooled[m], "folds": [float(v) for v in vals]}
    return out


def format_summary(name: str, summary: dict) -> str:
    parts = []
    for m in METRICS:
        s = summary[m]
        lo, hi = s["ci95"]
        ci = f" [95% CI {lo:.2f}-{hi:.2f}]" if lo is not None else ""
        sd = f" +- {s['sd']:.3f}" if s["sd"] is not None else ""
        parts.append(f"{m} {s['mean']:.3f}{sd}{ci}")
    return f"{name:<10} " + "; ".join(parts)


def comparison_table(models: dict, labels: dict | None = None, reference: dict | None = None,
                     subset_references: dict | None = None) -> str:
    """Markdown table of all models side by side: macro-F1, balanced accuracy, macro-AUC, accuracy as
    mean +- SD over the (same) outer folds [bootstrap 95 % CI of the pooled out-of-fold predictions].
    ``reference``: :func:`majority_reference`, its row last - the trivial answer every model must beat.
    ``subset_references``: {name: :func:`majority_reference`} of a row scored on a subset of the patients (``stage cv
    --single-modality``'s ``<m>_only``: those with its modality), its own reference row right below it - the one it
    is warned against (QA predictlast66: only in metrics.json and the warning, the table could not be read alone)."""
    labels = labels or {}
    subset_references = subset_references or {}
    cols = ("macro_f1", "balanced_accuracy", "macro_auc", "accuracy")
    head = "| model | macro-F1 | balanced accuracy | macro-AUC | accuracy |\n|---|---|---|---|---|"
    rows = []
    for name, s in models.items():
        cells = []
        for m in cols:
            if m not in s:
                cells.append("n/a")
                continue
            v = s[m]
            sd = f" ± {v['sd']:.2f}" if v.get("sd") is not None else ""
            lo, hi = v["ci95"]
            ci = f" [{lo:.2f}-{hi:.2f}]" if lo is not None else ""
            cells.append(f"{v['mean']:.3f}{sd}{ci}")
        rows.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
        if (sub := subset_references.get(name)) is not None:
            rows.append(f"| reference for {labels.get(name, name)} (its {sub['of']} patients): {majority_label(sub)} | "
                        + " | ".join(f"{sub[m]:.3f}" for m in cols) + " |")
    if reference is not None:
        rows.append(f"| reference: {majority_label(reference)} | "
                    + " | ".join(f"{reference[m]:.3f}" for m in cols) + " |")
    return head + "\n" + "\n".join(rows)


def majority_reference(y: np.ndarray, classes) -> dict:
    """The trivial model to beat: always answering the most common class of ``y`` (the first in class order on a
    tie).  Its accuracy is that class's share, its balanced accuracy 1 / (classes present), its macro-F1 the one
    class's F1 (precision = its share, recall 1) over the classes present, its macro-AUC 0.5 (one constant answer
    ranks no patient above another).  QA predictfollow66: on NSCLC-Radiogenomics the logistic regression (accuracy
    0.499) and the fusion network (0.463) scored below always answering 'I' (0.611), and nothing said so."""
    counts = class_counts(y, classes)
    n = int(sum(counts.values()))
    top = max(counts, key=counts.get)
    share = counts[top] / n if n else float("nan")
    present = max(1, sum(1 for v in counts.values() if v))
    return {"class": top, "n": counts[top], "of": n, "accuracy": share, "balanced_accuracy": 1.0 / present,
            "macro_f1": 2 * share / (1 + share) / present, "macro_auc": 0.5}


def majority_label(ref: dict) -> str:
    """The reference row's name: ``always the most common class 'I' (99 of 162)``."""
    return f"always the most common class {ref['class']!r} ({ref['n']} of {ref['of']})"


# what to do when a model does not beat always answering the most common class (:func:`majority_warning`)
MAJORITY_FIXES = {
    "cv": "do not use its stage calls: give more informative inputs (EHR columns, genes: --top-k, CT) or more "
          "patients, or fewer classes (--label-groups), and compare again",
    "train": "do not use its stage calls: give more informative inputs (EHR columns, genes: --top-k, CT) or more "
             "patients, or fewer classes (--label-groups), train again, and check with `lungai stage cv`",
    "validation": "do not use its stage calls for such patients (another population, label definition or data "
                  "coding than at training?); check the inputs, or train again on patients like these",
}


def inner_scores(recall: dict | None, counts: dict) -> dict | None:
    """Balanced accuracy and accuracy of an inner CV from its recall per class over the pooled inner test folds
    ({class: recall, None for a class no patient has}: :func:`lungai.fusion.cv.class_recall`), where each patient is
    tested once, and the cohort's ``counts`` per class ({class: patients}); None when no inner CV ran."""
    got = {c: v for c, v in (recall or {}).items() if v is not None}
    n = sum(counts.get(c, 0) for c in got)
    if not got or not n:
        return None
    return {"balanced_accuracy": float(np.mean(list(got.values()))),
            "accuracy": float(sum(v * counts.get(c, 0) for c, v in got.items()) / n)}


def inner_majority_warning(label: str, scores: dict | None, ref: dict) -> str | None:
    """``stage train``: :func:`majority_warning` of a candidate's inner-CV ``scores`` (:func:`inner_scores`) against
    the training cohort's :func:`majority_reference`; None when no inner CV ran (QA stagefollow66: the model card of
    a model below always answering 'I' said nothing of it)."""
    if scores is None:
        return None
    return majority_warning(f"{label} (inner CV of the training cohort)",
                            {m: {"mean": scores[m]} for m in ("accuracy", "balanced_accuracy")}, ref, "train")


def majority_lines(selection: dict) -> list:
    """The reference row of ``stage train``'s comparison (console and model_card.md) and, when no inner CV ran, why
    no model is compared with it; [] for a model saved before the reference was recorded."""
    ref = selection.get("majority_reference")
    if not ref:
        return []
    lines = [f"reference: {majority_label(ref)}: macro-F1 {ref['macro_f1']:.3f}, balanced accuracy "
             f"{ref['balanced_accuracy']:.3f}, accuracy {ref['accuracy']:.3f} - every model must beat it"]
    if all(c.get("inner_macro_f1") is None for c in selection["candidates"].values()):
        lines.append("no inner CV ran (--inner-folds 1 or a single model): whether the locked model beats the "
                     "reference is not measured - run `lungai stage cv` on the same data to see it")
    return lines


def majority_warning(label: str, summary: dict, ref: dict, fix: str = "cv") -> str | None:
    """A warning when a model's accuracy or balanced accuracy (the mean over folds; one cohort: its score) does not
    beat :func:`majority_reference`, with what to do (``fix``: a key of :data:`MAJORITY_FIXES`); None when it beats
    both."""
    acc, bal = summary["accuracy"]["mean"], summary["balanced_accuracy"]["mean"]
    acc_low, bal_low = not acc > ref["accuracy"], not bal > ref["balanced_accuracy"]
    if not (acc_low or bal_low):
        return None
    trivial = f"always answering the most common class {ref['class']!r} ({ref['n']} of {ref['of']})"
    figures = (f"accuracy {acc:.3f} vs {ref['accuracy']:.3f}, balanced accuracy {bal:.3f} vs "
               f"{ref['balanced_accuracy']:.3f} (chance)")
    if acc_low and bal_low:
        return f"{label} does not beat {trivial}: {figures} - {MAJORITY_FIXES[fix]}"
    if bal_low:
        return (f"{label}'s balanced accuracy is not above chance though its accuracy beats {trivial}: {figures}: it "
                f"mostly answers the common class - {MAJORITY_FIXES[fix]}")
    # "below" only where the figures shown differ: QA stagefollow71 read "logreg's accuracy is below always answering
    # ... 'I' (26 of 54) ... accuracy 0.481 vs 0.481" of a model as accurate as the constant answer
    if np.isclose(acc, ref["accuracy"], rtol=0, atol=1e-9):
        compared = f"equals that of {trivial}"
    elif f"{acc:.3f}" == f"{ref['accuracy']:.3f}":
        compared = f"is not above that of {trivial}"
    else:
        compared = f"is below {trivial}"
    return (f"{label}'s accuracy {compared}, though its balanced accuracy beats chance: {figures}: it gives up "
            f"correct {ref['class']!r} calls for the rarer classes - judge it by balanced accuracy and macro-F1, and "
            f"check in its confusion matrix that the rarer classes' hits are worth the {ref['class']!r} calls lost "
            "before using it")
