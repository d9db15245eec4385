"""One adaptation of the component: the support set, the classifier built
from it, and how its logits become scores. predict() reads one such snapshot,
so its scores and labels always belong together, even while adapt() swaps in
a new one."""

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, List, Optional, Tuple

import numpy
import torch

from ..errors import Errors
from ..learners.base import Learner
from ..models.balance import LabelBalance, weighted_quantile
from ..models.calibration import (
    fit_calibration,
    leave_one_out_similarities,
    own_class_left_out,
)
from ..models.classifiers import Classifier, LinearClassifier
from ..models.metric import MetricHead
from .held_out import example_folds, held_out_top_logits
from .support_set import SupportSet


@dataclass(frozen=True)
class Adaptation:
    """support_set (SupportSet): The examples and what was fitted on them.
    classifier (Optional[Classifier]): Exclusive logits; None with no labels.
    prototypes (Optional[torch.Tensor]): (n_labels, width) class means, for
        multi-label similarities and the in-scope decision.
    head (Optional[MetricHead]): The head's parameters when this was built.
    left_out_similarities (Optional[torch.Tensor]): Each support example's
        similarity to its own label's prototype without it (labels with two or
        more rows only; descriptions are no examples): what in-scope
        similarities look like.
    left_out_labels (Optional[torch.Tensor]): The label of each of those.
    """

    support_set: SupportSet
    classifier: Optional[Classifier] = None
    prototypes: Optional[torch.Tensor] = None
    head: Optional[MetricHead] = None
    left_out_similarities: Optional[torch.Tensor] = None
    left_out_labels: Optional[torch.Tensor] = None

    @classmethod
    def empty(cls) -> "Adaptation":
        return cls(SupportSet.empty())

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.support_set.labels

    def scores(self, embeddings: torch.Tensor, *, exclusive_classes: bool) -> torch.Tensor:
        """(n_docs, n_labels) scores: a softmax over the classifier's logits, or
        calibrated independent sigmoids of the similarity to each prototype."""
        return self.classify(embeddings, exclusive_classes=exclusive_classes)[0]

    def decide(
        self, embeddings: torch.Tensor, settings: Dict[str, Any]
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The scores and, where the component's settings have it decide
        (decides_in_scope), the in-scope booleans: what predict() gives."""
        width = self.support_set.width
        if embeddings.shape[1] != width:
            raise ValueError(Errors.E020.format(stored=width, encoder=embeddings.shape[1]))
        decides = decides_in_scope(settings)
        return self.classify(
            embeddings,
            exclusive_classes=settings["exclusive_classes"],
            in_scope_quantile=settings["in_scope_quantile"] if decides else None,
            balance=LabelBalance.from_settings(settings),
        )

    def classify(
        self,
        embeddings: torch.Tensor,
        *,
        exclusive_classes: bool,
        in_scope_quantile: Optional[float] = None,
        balance: LabelBalance = LabelBalance(),
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The scores (see scores()) and, with `in_scope_quantile`, the
        in-scope booleans (see in_scope()), the classifier's logits computed
        once for both."""
        assert self.classifier is not None and self.head is not None
        with torch.no_grad():
            if exclusive_classes:
                logits = self.classifier.logits(embeddings)
                scores = torch.softmax(logits, dim=1)
            else:
                logits = None
                slope, offset = self.support_set.calibration or (1.0, 0.0)
                similarity = self.head.similarity(embeddings, self.prototypes)
                scores = torch.sigmoid(slope * similarity + offset)
        if in_scope_quantile is None:
            return scores, None
        return scores, self.in_scope(embeddings, in_scope_quantile, logits=logits, balance=balance)

    def in_scope(
        self,
        embeddings: torch.Tensor,
        quantile: float,
        *,
        logits: Optional[torch.Tensor] = None,
        balance: LabelBalance = LabelBalance(),
    ) -> Optional[torch.Tensor]:
        """(n_docs,) booleans: whether each doc's in-scope score reaches all
        but `quantile` of what the support's examples score held out (see
        in_scope_scores), each label's examples weighing the same unless
        `balance` is "none". None when there is nothing to calibrate on
        (no label with two examples).

        logits (Optional[torch.Tensor]): The classifier's logits of
            `embeddings`, where already computed.
        """
        held_out = self.held_out_in_scope_scores
        if held_out is None or not len(held_out[0]):
            return None
        values, labels = held_out
        weights = balance.label_weights(labels, len(self.labels))
        threshold = weighted_quantile(values, quantile, weights)
        scores = self.in_scope_scores(embeddings, logits=logits)
        return scores >= threshold.to(scores.dtype)

    @cached_property
    def held_out_in_scope_scores(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The in-scope scores of the support's examples, each held out of
        what scores it, and their labels: its top logit from the head
        refitted without it where adapt() computed those (see held_out.py),
        else its similarity to its own label's prototype without it."""
        if self._decides_by_head:
            assert self.prototypes is not None
            held_out = self.support_set.held_out_scores
            kept = ~numpy.isnan(held_out)
            device = self.prototypes.device
            return (
                torch.tensor(held_out[kept], device=device),
                torch.tensor(self.support_set.label_ids[kept], device=device),
            )
        if self.left_out_similarities is None or self.left_out_labels is None:
            return None
        return self.left_out_similarities, self.left_out_labels

    def in_scope_scores(
        self, embeddings: torch.Tensor, *, logits: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """(n_docs,) the score the in-scope decision reads: the fitted head's
        top logit where its held-out scores were computed, else the
        similarity to the nearest label's prototype."""
        if self._decides_by_head:
            assert self.classifier is not None
            if logits is None:
                with torch.no_grad():
                    logits = self.classifier.logits(embeddings)
            return logits.max(dim=1).values
        return self.nearest_similarity(embeddings)

    @property
    def _decides_by_head(self) -> bool:
        # a support set has held-out scores only with a fitted head (checked)
        return self.support_set.held_out_scores is not None

    def nearest_similarity(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(n_docs,) each doc's similarity to its nearest label's prototype."""
        assert self.head is not None and self.prototypes is not None
        with torch.no_grad():
            return self.head.similarity(embeddings, self.prototypes).max(dim=1).values


def decides_in_scope(settings: Dict[str, Any]) -> bool:
    """Whether the component decides from the support set which docs are in
    scope: with an unknown_label, exclusive classes and an in_scope_quantile."""
    return (
        settings["unknown_label"] is not None
        and settings["exclusive_classes"]
        and settings["in_scope_quantile"] is not None
    )


def out_of_scope(
    scores: numpy.ndarray, in_scope: Optional[numpy.ndarray], threshold: float
) -> List[bool]:
    """Whether each doc is out of scope: its top score is below the
    threshold, or it is not in scope (Adaptation.in_scope)."""
    return [
        bool(row.max() < threshold) or (in_scope is not None and not in_scope[i])
        for i, row in enumerate(scores)
    ]


def fit_adaptation(
    support_set: SupportSet,
    learner: Learner,
    head: MetricHead,
    device: torch.device,
    *,
    steps: int,
    learn_rate: Optional[float],
    calibrate: bool,
    hold_out: bool = False,
    balance: LabelBalance = LabelBalance(),
) -> Adaptation:
    """Fit what a support set needs (a linear head when `steps` > 0, and
    with `hold_out` the head's held-out scores for the in-scope decision; the
    multi-label calibration when `calibrate`) and build its classifier.
    `balance` keeps the support's label frequencies out of both
    (models/balance.py)."""
    if not support_set.labels:
        return Adaptation(support_set)
    support, labels = _tensors(support_set, device)
    n_labels = len(support_set.labels)
    if steps > 0:
        # each label's examples, then its description, in the order they were
        # added: the head's steps then sum the same rows in the same order
        # however adapt() calls were split
        is_description = torch.tensor(support_set.is_description, device=device)
        canonical = torch.argsort(labels * 2 + is_description.long(), stable=True)

        def fit(rows: torch.Tensor, row_labels: torch.Tensor, n: int) -> Classifier:
            return learner.adapt(
                rows, row_labels, n, head, steps=steps, learn_rate=learn_rate,
                balance=balance,
            )  # fmt: skip

        fitted = fit(support[canonical], labels[canonical], n_labels)
        assert isinstance(fitted, LinearClassifier)
        support_set = support_set.with_head(fitted.weight.cpu().numpy(), fitted.bias.cpu().numpy())
        if hold_out:
            folds = example_folds(support_set.label_ids, support_set.is_description)
            support_set = support_set.with_held_out_scores(
                held_out_top_logits(fit, support, labels, n_labels, folds)
            )
    if calibrate:
        support_set = support_set.with_calibration(
            fit_calibration(*leave_one_out_similarities(support, labels, n_labels, head, balance))
        )
    return build_adaptation(support_set, learner, head, device)


def build_adaptation(
    support_set: SupportSet, learner: Learner, head: MetricHead, device: torch.device
) -> Adaptation:
    """The classifier of a support set as saved: its fitted head, or the
    learner's instant classifier (prototypes, or attention over the examples)."""
    if not support_set.labels:
        return Adaptation(support_set)
    head = head.detached()
    support, labels = _tensors(support_set, device)
    n_labels = len(support_set.labels)
    if support_set.head_weight is not None and support_set.head_bias is not None:
        classifier: Classifier = LinearClassifier(
            torch.tensor(support_set.head_weight, device=device),
            torch.tensor(support_set.head_bias, device=device),
            head.metric,
        )
    else:
        classifier = learner.adapt(support, labels, n_labels, head, steps=0)
    prototypes = torch.tensor(support_set.means, device=device)
    own, has_other = own_class_left_out(support, labels, n_labels, head)
    is_example = ~torch.tensor(support_set.is_description, device=device)
    left_out = has_other & is_example
    return Adaptation(support_set, classifier, prototypes, head, own[left_out], labels[left_out])


def _tensors(support_set: SupportSet, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(support_set.embeddings, device=device),
        torch.tensor(support_set.label_ids, device=device),
    )
