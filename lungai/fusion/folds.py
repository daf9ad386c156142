"""The class counts a stratified (nested) CV and ``stage train``'s inner CV need, and the stratified splits -
light (numpy; scikit-learn's splitter imported when splitting), so that ``lungai stage cv / train`` refuse too few
patients per class while reading the EHR table's labels, before torch, MONAI and the RNA matrix are loaded
(:func:`lungai.fusion.workflows.check_labels_early`).  QA stage72: ``stage cv --folds 40`` on NSCLC-Radiogenomics
(smallest class 29) was refused after reading the whole cohort - 10.4 s of an idle shared machine, 70-79 s of a
loaded one; ``stage cv --inner-folds 25`` after 22.2 s, ``stage train --inner-folds 30`` after 20.2 s.
:mod:`lungai.fusion.cv` re-exports these names."""

from __future__ import annotations

import numpy as np

from lungai.errors import InputError, counted


def check_labels(cohort, folds: int) -> list:
    """Classes (sorted); raises InputError for one class or too few patients per class."""
    counts = cohort.labels.value_counts().sort_index()
    if len(counts) < 2:
        from lungai.fusion.labels import late_group_note

        late = late_group_note(counts.index)
        raise InputError(f"the label has only one class ({', '.join(map(str, counts.index))}) "
                         f"among {int(counts.sum())} labelled patients",
                         "choose a label column with at least two classes" + (
                             f" ({late}): give --label a column of the AJCC stage (IIIA / IIIB / IV), with "
                             "--label-groups to merge sub-stages (e.g. 'III=IIIA,IIIB;IV=IV')" if late else ""))
    small = {str(k): int(v) for k, v in counts.items() if v < folds}
    if small:
        # fewer folds only where some fit: a class of one patient fits none (QA optsfollow71: `--folds 2` was
        # suggested for it, and refused the same way)
        fewer = (f"use fewer folds (--folds {int(counts.min())}), " if counts.min() >= 2 else
                 "(a class of one patient fits no CV: each class needs >= 2) ")
        raise InputError(f"too few patients per class for {folds}-fold CV: {small} (each class needs >= {folds})",
                         fewer + "merge rare classes (--label-groups) or add patients")
    return [str(c) for c in counts.index]


def split(y: np.ndarray, k: int, seed: int):
    """The stratified ``k`` folds of labels ``y`` (train, test index pairs), shuffled by ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    # wrapped: the inner folds' seed + 1 of the largest seed, 2**32 - 1, is beyond scikit-learn's random_state
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2 ** 32).split(np.zeros(len(y)), y))


def check_inner_labels(cohort, classes, folds: int, inner_folds: int, seed: int) -> None:
    """Before any training: every outer training fold (the splits :func:`lungai.fusion.cv.cross_validate` uses) must
    hold at least ``inner_folds`` patients of every class, or the inner CV - hyper-parameters and the nested model
    choice - could not run there.  Raises InputError naming the class and the largest usable ``--inner-folds``."""
    if inner_folds < 2:
        return
    y = cohort.y(classes)
    counts = np.array([np.bincount(y[tr], minlength=len(classes)) for tr, _ in split(y, folds, seed)])
    if counts.min() >= inner_folds:
        return
    fold, k = np.unravel_index(np.argmin(counts), counts.shape)
    usable, rarest = int(counts.min()), int(np.bincount(y, minlength=len(classes)).min())
    more_folds = rarest > folds and rarest - 1 >= inner_folds   # more outer folds: larger training parts
    raise InputError(f"too few patients per class for the {inner_folds}-fold inner CV: class {classes[k]!r} has "
                     f"{counted(usable, 'patient')} in the training part of outer fold {fold + 1} of {folds} (each "
                     f"class needs >= {inner_folds} there to choose the hyper-parameters and the model)",
                     (f"use --inner-folds {usable} (the largest that fits), " if usable >= 2 else "use ")
                     + "--inner-folds 1 (no inner CV: no hyper-parameter or model choice), "
                     + (f"more --folds (up to {rarest}: larger training parts), " if more_folds else "")
                     + "merge rare classes (--label-groups) or add patients")


def check_train_labels(cohort, inner_folds: int) -> list:
    """``stage train``: the classes (sorted; each class needs >= 2 patients), and the smallest class holds at least
    ``inner_folds`` patients for the inner CV that chooses the model to lock."""
    classes = check_labels(cohort, 1)           # one class refused; a class of one patient below, in train's words
    counts = cohort.labels.value_counts().sort_index()
    smallest = int(counts.min())
    if smallest < 2:
        # QA stagefollow72: "too few patients per class for 2-fold CV" was said with --inner-folds 1 too, where there
        # is no CV at all
        small = {str(k): int(v) for k, v in counts.items() if v < 2}
        need = ("also with --inner-folds 1 (no inner CV)" if inner_folds < 2 else
                f"and >= {inner_folds} for the {inner_folds}-fold inner CV that chooses the model to lock")
        raise InputError(f"too few patients per class to train a model: {small} (stage train needs >= 2 patients in "
                         f"every class, {need})",
                         "merge rare classes (--label-groups) or add patients")
    if inner_folds > smallest:
        raise InputError(f"the smallest class has {smallest} patients, too few for the {inner_folds}-fold inner "
                         "CV that chooses the model to lock",
                         f"use --inner-folds {max(1, smallest)} (1 = no choice: the fusion locked without comparison), "
                         "merge rare classes (--label-groups) or add patients")
    return classes
