"""What every learner shares: the episode protocol, adaptation (from a support
set to a classifier, as adapt() does it) and the inner loop of the MAML family."""

from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from ..checks import check_integer, check_positive
from ..models.balance import LabelBalance
from ..models.classifiers import (
    Classifier,
    LinearClassifier,
    MetricHead,
    prototype_classifier,
    prototype_start,
)

# what an inner loop starts from: (support, support_labels, n_classes, head) -> classifier
Start = Callable[[torch.Tensor, torch.Tensor, int, MetricHead], LinearClassifier]


class LearnerOutput(NamedTuple):
    loss: torch.Tensor  # scalar to backpropagate: the learner's meta-objective
    query_logits: torch.Tensor  # (n_query, n_way), for the reported loss and accuracy


class Learner:
    """A meta-learner: turns an episode into a loss (training), and a support
    set into a classifier (adaptation, the same way in training and at adapt()).

    inner_steps (int): Inner-loop steps in training, and adapt()'s default.
    init_inner_lr (float): Initial inner-loop step size, meta-learned where
        the learner says so.
    start (Start): What the inner loop starts from.
    """

    inner_steps: int = 0
    init_inner_lr: float = 10.0
    start: Start = staticmethod(prototype_start)
    # True for a learner that trains on whole batches of labelled texts
    # (batch_loss) rather than on episodes (__call__)
    many_way: bool = False

    def __call__(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        query_labels: torch.Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        """support (torch.Tensor): (n_support, dim) encoder outputs of the support set.
        support_labels (torch.Tensor): (n_support,) class indices 0..n_way-1.
        query (torch.Tensor): (n_query, dim) encoder outputs of the queries.
        query_labels (torch.Tensor): (n_query,) class indices 0..n_way-1.
        head (MetricHead): The head's meta-learned parameters as tensors.
        """
        raise NotImplementedError

    def instant_classifier(
        self, support: torch.Tensor, support_labels: torch.Tensor, n_way: int, head: MetricHead
    ) -> Classifier:
        """The classifier without inner-loop steps: nearest prototype."""
        return prototype_classifier(support, support_labels, n_way, head)

    def adapt(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        n_way: int,
        head: MetricHead,
        *,
        steps: int,
        learn_rate: Optional[float] = None,
        balance: LabelBalance = LabelBalance(),
    ) -> Classifier:
        """A classifier for a support set, with no gradient to the encoder or the
        meta-parameters: the instant one, or `steps` inner-loop steps from this
        learner's start.

        learn_rate (Optional[float]): Step size for both the weight and the
            bias; None uses the head's meta-learned step sizes.
        balance (LabelBalance): How the steps keep the support's label
            frequencies out of the head (default: they keep them).
        """
        head, support = head.detached(), support.detach()
        if steps == 0:
            with torch.no_grad():
                return self.instant_classifier(support, support_labels, n_way, head)
        step_sizes = head.log_inner_lr.exp()
        if learn_rate is not None:
            step_sizes = torch.full_like(step_sizes, learn_rate)
        weights = balance.loss_weights(support_labels, n_way)
        with torch.enable_grad():
            start = self.start(support, support_labels, n_way, head)
            adapted, _ = inner_loop(
                start, support, support_labels, step_sizes, steps, row_weights=weights
            )
        bias = balance.adjust_bias(adapted.bias.detach(), support_labels, n_way)
        return LinearClassifier(adapted.weight.detach(), bias, head.metric)


def inner_loop(
    start: LinearClassifier,
    support: torch.Tensor,
    support_labels: torch.Tensor,
    step_sizes: torch.Tensor,
    steps: int,
    *,
    second_order: bool = False,
    row_weights: Optional[torch.Tensor] = None,
) -> Tuple[LinearClassifier, List[torch.Tensor]]:
    """Gradient descent on the support loss w.r.t. a linear classifier:
    theta_{i+1} = theta_i - alpha * grad L_support(theta_i), alpha being one step
    size for the weight and one for the bias.

    step_sizes (torch.Tensor): (2,) step sizes of the weight and the bias.
    second_order (bool): Keep the graph of the inner gradients, so an outer
        loss differentiates through them (MAML); False treats them as
        constants (first order: FOMAML, Reptile, adaptation).
    row_weights (Optional[torch.Tensor]): (n_support,) weight of each row in
        the loss, with a mean of 1; None weighs every row the same.
    RETURNS (Tuple[LinearClassifier, List[torch.Tensor]]): The adapted
        classifier and the support loss before each step.
    """
    weight, bias = start.weight, start.bias
    if not weight.requires_grad:
        weight = weight.clone().requires_grad_(True)
    if not bias.requires_grad:
        bias = bias.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        logits = LinearClassifier(weight, bias, start.metric).logits(support)
        if row_weights is None:
            loss = F.cross_entropy(logits, support_labels)
        else:
            rows = F.cross_entropy(logits, support_labels, reduction="none")
            loss = (rows * row_weights.to(rows.dtype)).mean()
        d_weight, d_bias = torch.autograd.grad(loss, (weight, bias), create_graph=second_order)
        weight = weight - step_sizes[0] * d_weight
        bias = bias - step_sizes[1] * d_bias
        losses.append(loss)
    return LinearClassifier(weight, bias, start.metric), losses


def check_inner_steps(inner_steps: int) -> None:
    check_integer("inner_steps", inner_steps, 1)


def check_init_inner_lr(init_inner_lr: float) -> None:
    check_positive("init_inner_lr", init_inner_lr)


def n_classes(labels: torch.Tensor) -> int:
    return int(labels.max()) + 1
