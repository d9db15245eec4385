"""Calibration of multi-label scores, fitted on the support set alone.

A multi-label score is sigmoid(a * s + b), s being the similarity of a doc to a
label's prototype (cosine, or negative squared distance). a and b are fitted at
adapt() by logistic regression (Platt 1999) on the support set itself: each
example against each label's prototype, its own label's prototype left out of
it (leave-one-out), positives and negatives weighted equally, and, unless
label_balance is "none", every label's examples weighing the same. So 0.5 is
the similarity at which a label is as likely to apply as not, given equal
priors, whatever temperature meta-pretraining has learned.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .balance import LabelBalance
from .metric import MetricHead, class_prototypes

# weight of the L2 penalty on the slope: keeps a finite when the support set
# separates perfectly
SLOPE_PENALTY = 1e-3


def own_class_left_out(
    support: torch.Tensor, support_labels: torch.Tensor, n_classes: int, head: MetricHead
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Each support example's similarity to its own class's prototype with the
    example itself left out of it, and whether that prototype exists (its class
    has another example).

    support (torch.Tensor): (n_support, width) prepared support embeddings.
    RETURNS (Tuple[torch.Tensor, torch.Tensor]): (n_support,) similarities and
        (n_support,) booleans.
    """
    support = support.double()
    prototypes = class_prototypes(support, support_labels, n_classes)
    own_count = torch.bincount(support_labels, minlength=n_classes).to(support.dtype)[
        support_labels
    ]
    own_sum = prototypes[support_labels] * own_count[:, None]
    left_out = (own_sum - support) / (own_count[:, None] - 1).clamp(min=1)
    if head.metric == "cosine":
        own = (F.normalize(support, dim=1) * F.normalize(left_out, dim=1)).sum(1)
    else:
        own = -(support - left_out).pow(2).sum(1)
    return own, own_count > 1


def leave_one_out_similarities(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    n_classes: int,
    head: MetricHead,
    balance: LabelBalance = LabelBalance(),
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Similarities of each support example to each class prototype, the
    example left out of its own class's prototype. An example that is its
    class's only one has no such prototype: that pair is left out.

    support (torch.Tensor): (n_support, width) prepared support embeddings.
    balance (LabelBalance): Unless its method is "none", each pair weighs
        one over its example's label count.
    RETURNS (Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]): 1-d
        similarities, 0/1 targets and the weights of the pairs (None: equal).
    """
    support = support.double()
    prototypes = class_prototypes(support, support_labels, n_classes)
    similarities = head.similarity(support, prototypes)  # (n_support, n_classes)
    own, keep = own_class_left_out(support, support_labels, n_classes, head)
    targets = F.one_hot(support_labels, n_classes).to(support.dtype)
    similarities = torch.where(targets.bool(), own[:, None], similarities)
    mask = torch.ones_like(targets, dtype=torch.bool)
    mask[~keep] = mask[~keep] & ~targets[~keep].bool()
    weights = balance.label_weights(support_labels, n_classes)
    if weights is not None:
        weights = weights[:, None].expand_as(mask)[mask]
    return similarities[mask], targets[mask], weights


def fit_calibration(
    similarities: torch.Tensor, targets: torch.Tensor, pair_weights: Optional[torch.Tensor] = None
) -> Tuple[float, float]:
    """Slope and offset of a logistic regression of targets on similarities,
    positives and negatives weighted equally, each pair within them by
    `pair_weights` (None: the same).

    RETURNS (Tuple[float, float]): (a, b) with P(label) = sigmoid(a * s + b).
    """
    x, y = similarities.detach().double(), targets.detach().double()
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        # one-sided data: no boundary to fit; put 0.5 just past the data
        edge = float(x.max()) if n_pos == 0 else float(x.min())
        return 10.0, -10.0 * (edge + (0.05 if n_pos == 0 else -0.05))
    if pair_weights is None:
        weights = torch.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    else:
        w = pair_weights.detach().double()
        weights = torch.where(y > 0, 0.5 * w / (w * y).sum(), 0.5 * w / (w * (1 - y)).sum())
    params = torch.zeros(2, dtype=torch.float64)
    # Newton's method on a convex 2-parameter problem: a few steps suffice
    for _ in range(50):
        p = torch.sigmoid(params[0] * x + params[1])
        grad = torch.stack([(weights * (p - y) * x).sum(), (weights * (p - y)).sum()])
        grad[0] += 2 * SLOPE_PENALTY * params[0]
        w = weights * p * (1 - p)
        hessian = torch.stack(
            [
                torch.stack([(w * x * x).sum() + 2 * SLOPE_PENALTY, (w * x).sum()]),
                torch.stack([(w * x).sum(), w.sum()]),
            ]
        )
        step = torch.linalg.solve(hessian + 1e-12 * torch.eye(2, dtype=torch.float64), grad)
        params = params - step
        if step.abs().max() < 1e-10:
            break
    return float(params[0]), float(params[1])
