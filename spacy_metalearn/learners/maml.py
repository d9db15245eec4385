"""MAML (Finn et al., 2017) and its first-order approximation FOMAML, on the
linear head (the encoder is meta-learned through the outer loss but not
adapted in the inner loop, as in ANIL, Raghu et al. 2020).

Inner loop: theta' = theta - alpha * grad L_support(theta), from zero weights
(see `zero_start`: a learned start shared by the renumbered classes has no
meta-gradient), with step sizes learned per layer (MAML++'s LSLR).
Outer loss: L_query(theta'), differentiated through the inner loop (second
order) or with its gradients treated as constants (first order).
What is meta-learned (the encoder, the step sizes) is what adapt() starts from.
"""

import torch.nn.functional as F
from torch import Tensor

from ..models.classifiers import zero_start
from ..models.metric import MetricHead
from ..registry import registry
from .base import (
    Learner,
    LearnerOutput,
    check_init_inner_lr,
    check_inner_steps,
    inner_loop,
    n_classes,
)


class MAML(Learner):
    start = staticmethod(zero_start)

    def __init__(
        self, inner_steps: int, first_order: bool, learn_inner_lr: bool, init_inner_lr: float
    ):
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.learn_inner_lr = learn_inner_lr
        self.init_inner_lr = init_inner_lr

    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        step_sizes = head.log_inner_lr.exp()
        if not self.learn_inner_lr:
            step_sizes = step_sizes.detach()
        start = self.start(support, support_labels, n_classes(support_labels), head)
        adapted, _ = inner_loop(
            start,
            support,
            support_labels,
            step_sizes,
            self.inner_steps,
            second_order=not self.first_order,
        )
        logits = adapted.logits(query)
        return LearnerOutput(F.cross_entropy(logits, query_labels), logits)


@registry.meta_learners("spacy_metalearn.MAML.v1")
def make_maml(
    inner_steps: int = 5,
    first_order: bool = False,
    learn_inner_lr: bool = True,
    init_inner_lr: float = 10.0,
) -> Learner:
    """MAML on the linear head, from zero weights.

    inner_steps (int): Gradient steps on the support set, in training and (by
        default) in adapt().
    first_order (bool): FOMAML: ignore second-order terms (cheaper).
    learn_inner_lr (bool): Meta-learn the per-layer inner step sizes.
    init_inner_lr (float): Their initial value.
    """
    check_inner_steps(inner_steps)
    check_init_inner_lr(init_inner_lr)
    return MAML(inner_steps, first_order, learn_inner_lr, init_inner_lr)
