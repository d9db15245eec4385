"""What in-scope scores of a fitted head look like, seen from the support set
alone: each support example's top logit from a head fitted, as adapt() fits
it, without that example. A head fitted on an example scores it higher than
it will score a new text of its label, so the fitted head's own logits on its
support would say nothing; held out, the examples stand in for new in-scope
texts, and a doc whose top logit is below nearly all of theirs is unlike
anything in scope.

The examples are split into folds of one example of each label (the i-th
example of a label, in the order kept, goes to fold i mod n_folds, n_folds
being the most examples any label has, at most MAX_FOLDS), so each held-out
head has one example fewer of every label, as a 10-shot support looks to a
9-shot one. Descriptions, and an example that is its label's only row, are
always fitted on and never held out: every label keeps a row in every fold.
"""

from typing import Callable

import numpy
import torch

from ..models.classifiers import Classifier

# at most this many refits of the head per adapt()
MAX_FOLDS = 10

# fits a classifier to (support, support_labels, n_labels), as adapt() does
FitHead = Callable[[torch.Tensor, torch.Tensor, int], Classifier]


def example_folds(label_ids: numpy.ndarray, is_description: numpy.ndarray) -> numpy.ndarray:
    """(n_rows,) int64 fold of each row, -1 for rows never held out
    (descriptions, and examples that are their label's only row).

    label_ids (numpy.ndarray): (n_rows,) label index of each row.
    is_description (numpy.ndarray): (n_rows,) True for description rows.
    """
    folds = numpy.full(len(label_ids), -1, dtype="int64")
    rows_per_label = numpy.bincount(label_ids)
    held = ~is_description & (rows_per_label[label_ids] >= 2)
    if not held.any():
        return folds
    examples_per_label = numpy.bincount(label_ids[held], minlength=len(rows_per_label))
    n_folds = min(int(examples_per_label.max()), MAX_FOLDS)
    seen = numpy.zeros(len(rows_per_label), dtype="int64")
    for row in numpy.flatnonzero(held):
        folds[row] = seen[label_ids[row]] % n_folds
        seen[label_ids[row]] += 1
    return folds


def held_out_top_logits(
    fit: FitHead,
    support: torch.Tensor,
    support_labels: torch.Tensor,
    n_labels: int,
    folds: numpy.ndarray,
) -> numpy.ndarray:
    """(n_rows,) float32 each held-out row's top logit from a head fitted
    without its fold (NaN for rows never held out).

    fit (FitHead): Fits a head as adapt() does.
    support (torch.Tensor): (n_rows, width) prepared support embeddings.
    support_labels (torch.Tensor): (n_rows,) label index of each row.
    folds (numpy.ndarray): (n_rows,) from example_folds().
    """
    scores = numpy.full(len(folds), numpy.nan, dtype="float32")
    for fold in range(int(folds.max(initial=-1)) + 1):
        held = torch.as_tensor(folds == fold, device=support.device)
        classifier = fit(support[~held], support_labels[~held], n_labels)
        with torch.no_grad():
            top = classifier.logits(support[held]).max(dim=1).values
        scores[folds == fold] = top.cpu().numpy()
    return scores
