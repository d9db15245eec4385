"""Reptile (Nichol et al., 2018).

Inner loop: k steps of SGD on the episode, phi_{i+1} = phi_i - alpha g_i.
Meta-update: theta <- theta + epsilon (phi_k - theta).

Written as a loss for spaCy's optimizer: with the inner gradients g_i held
constant, the sum of the inner losses L(phi_i) has gradient sum_i g_i =
(theta - phi_k) / alpha with respect to the weights the inner loop starts from,
so an optimizer step moves them toward the adapted weights phi_k. The inner
loop adapts the linear head (from zeros, as in MAML); the encoder gets the sum
of its gradients along the same trajectory, which is its Reptile update to
first order in the inner step size.
"""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.metric import LinearHead, MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput
from .maml import MAML, check_inner_steps, with_fixed_inner_lr


class Reptile(Learner):
    initial_head = MAML.initial_head

    def __init__(self, inner_steps: int):
        self.inner_steps = inner_steps

    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        n_way = int(support_labels.max()) + 1
        head = with_fixed_inner_lr(head)  # Reptile's step sizes are not meta-learned
        start = self.initial_head(support, support_labels, n_way, head)
        start = LinearHead(start.weight.requires_grad_(True), start.bias.requires_grad_(True))
        features = torch.cat([support, query])
        labels = torch.cat([support_labels, query_labels])
        total, adapted = reptile_trajectory(head, start, features, labels, self.inner_steps)
        return LearnerOutput(total, adapted.logits(head, query))


def reptile_trajectory(
    head: MetricHead, start: LinearHead, features: Tensor, labels: Tensor, steps: int
) -> Tuple[Tensor, LinearHead]:
    """SGD from `start` with the inner gradients held constant.

    RETURNS (Tuple[Tensor, LinearHead]): the sum of the losses along the way
        (whose gradient w.r.t. `start` is (start - phi_k) / alpha) and phi_k.
    """
    weight, bias = start.weight, start.bias
    step_sizes = head.log_inner_lr.exp()
    total = features.new_zeros(())
    for _ in range(steps):
        loss = F.cross_entropy(LinearHead(weight, bias).logits(head, features), labels)
        total = total + loss
        d_weight, d_bias = torch.autograd.grad(loss, (weight, bias), retain_graph=True)
        weight = weight - step_sizes[0] * d_weight
        bias = bias - step_sizes[1] * d_bias
    return total, LinearHead(weight, bias)


@registry.meta_learners("spacy_metalearn.Reptile.v1")
def make_reptile(inner_steps: int = 5) -> Learner:
    """Reptile on the linear head and (first order) the encoder.

    inner_steps (int): SGD steps on each episode, in training and (by default)
        in adapt().
    """
    check_inner_steps(inner_steps)
    return Reptile(inner_steps)
