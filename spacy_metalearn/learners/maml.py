"""MAML (Finn et al., 2017) and its first-order approximation FOMAML, on the
linear head (the encoder is meta-learned through the outer loss, as in ANIL,
Raghu et al. 2020).

Inner loop: theta' = theta - alpha * grad L_support(theta), starting from zero
weights: classes are relabelled in every episode, so any learned start must be
the same for all classes, and adding one row to every class leaves a softmax
unchanged: zero is as good as any (Ye & Chao 2022), and works for any N.
Outer loss: L_query(theta'), differentiated through the inner loop (second
order) or with its gradients treated as constants (first order).
"""

import torch.nn.functional as F
from torch import Tensor

from ..errors import Errors
from ..models.metric import LinearHead, MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput, inner_loop


class MAML(Learner):
    def __init__(self, inner_steps: int, first_order: bool, learn_inner_lr: bool):
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.learn_inner_lr = learn_inner_lr

    def initial_head(
        self, support: Tensor, support_labels: Tensor, n_way: int, head: MetricHead
    ) -> LinearHead:
        zeros = support.new_zeros((n_way, support.shape[1]))
        return LinearHead(zeros, zeros[:, 0])

    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        n_way = int(support_labels.max()) + 1
        if not self.learn_inner_lr:
            head = with_fixed_inner_lr(head)
        start = self.initial_head(support, support_labels, n_way, head)
        adapted, _ = inner_loop(
            head,
            start,
            support,
            support_labels,
            self.inner_steps,
            second_order=not self.first_order,
        )
        logits = adapted.logits(head, query)
        return LearnerOutput(F.cross_entropy(logits, query_labels), logits)


def with_fixed_inner_lr(head: MetricHead) -> MetricHead:
    """The same head, its inner step sizes excluded from meta-learning."""
    return MetricHead(head.metric, **{**head.tensors(), "log_inner_lr": head.log_inner_lr.detach()})


def check_inner_steps(inner_steps: int) -> None:
    if not isinstance(inner_steps, int) or inner_steps < 1:
        raise ValueError(
            Errors.E019.format(
                setting="inner_steps", requirement="an integer >= 1", value=inner_steps
            )
        )


@registry.meta_learners("spacy_metalearn.MAML.v1")
def make_maml(
    inner_steps: int = 5, first_order: bool = False, learn_inner_lr: bool = True
) -> Learner:
    """MAML on the linear head.

    inner_steps (int): Gradient steps on the support set, in training and (by
        default) in adapt().
    first_order (bool): FOMAML: ignore second-order terms (cheaper).
    learn_inner_lr (bool): Meta-learn the per-layer inner step sizes.
    """
    check_inner_steps(inner_steps)
    return MAML(inner_steps, first_order, learn_inner_lr)
