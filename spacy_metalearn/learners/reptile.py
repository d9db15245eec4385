"""Reptile (Nichol et al., 2018), over the classifier that adapt() starts from.

Inner loop: k steps of SGD on the episode's task, support and queries alike
(Reptile has no support/query split), phi_{i+1} = phi_i - alpha g_i, from
theta = the support's prototypes as a linear classifier (as in Proto-MAML),
which the encoder and the temperature determine.
Meta-update: theta <- theta + epsilon (phi_k - theta).

Written as a loss for spaCy's optimizer: 0.5 |theta - phi_k|^2 / alpha with
phi_k held constant has gradient (theta - phi_k) / alpha with respect to theta,
so an optimizer step of size lr moves theta toward phi_k by epsilon =
lr / alpha; the chain rule carries that move into the encoder and the
temperature, which produce theta. The step sizes are not meta-learned. The
reported query logits come from k steps on the support alone, as adapt()
would give them, never from a classifier trained on those queries.
"""

import torch
from torch import Tensor

from ..models.classifiers import LinearClassifier, prototype_start
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


class Reptile(Learner):
    start = staticmethod(prototype_start)

    def __init__(self, inner_steps: int, init_inner_lr: float):
        self.inner_steps = inner_steps
        self.init_inner_lr = init_inner_lr

    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        step_sizes = head.log_inner_lr.exp().detach()
        theta = self.start(support, support_labels, n_classes(support_labels), head)
        start = LinearClassifier(theta.weight.detach(), theta.bias.detach(), theta.metric)
        task = torch.cat([support, query]).detach()
        task_labels = torch.cat([support_labels, query_labels])
        phi, _ = inner_loop(start, task, task_labels, step_sizes, self.inner_steps)
        phi = LinearClassifier(phi.weight.detach(), phi.bias.detach(), phi.metric)
        adapted, _ = inner_loop(
            start, support.detach(), support_labels, step_sizes, self.inner_steps
        )
        return LearnerOutput(reptile_loss(theta, phi, step_sizes), adapted.logits(query).detach())


def reptile_loss(theta: LinearClassifier, phi: LinearClassifier, step_sizes: Tensor) -> Tensor:
    """0.5 |theta - phi|^2 / alpha, per layer: its gradient w.r.t. theta is
    (theta - phi) / alpha, Reptile's direction (phi constant)."""
    return 0.5 * (
        (theta.weight - phi.weight).pow(2).sum() / step_sizes[0]
        + (theta.bias - phi.bias).pow(2).sum() / step_sizes[1]
    )


@registry.meta_learners("spacy_metalearn.Reptile.v1")
def make_reptile(inner_steps: int = 5, init_inner_lr: float = 10.0) -> Learner:
    """Reptile on the classifier adapt() starts from (the prototypes'), and
    through it the encoder.

    inner_steps (int): SGD steps on each support set, in training and (by
        default) in adapt().
    init_inner_lr (float): The inner step size (not meta-learned).
    """
    check_inner_steps(inner_steps)
    check_init_inner_lr(init_inner_lr)
    return Reptile(inner_steps, init_inner_lr)
