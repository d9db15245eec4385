"""What every meta-learner is: a function from one episode to a loss, plus the
way it adapts a linear head to a support set (its inner loop)."""

from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from ..models.metric import LinearHead, MetricHead, class_prototypes, prepare, prototype_linear_head


class LearnerOutput(NamedTuple):
    loss: torch.Tensor  # scalar, differentiable w.r.t. embeddings and head
    query_logits: torch.Tensor  # (n_query, n_way), for episode accuracy


class Learner:
    """Base of the learners: ProtoNet's loss, and an inner loop that starts
    from the prototypes (used by adapt(steps=N) for any learner).

    inner_steps (int): Inner-loop steps in training, and adapt()'s default.
    """

    inner_steps = 0

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
        head (MetricHead): The head's parameters as tensors.
        """
        raise NotImplementedError

    def initial_head(
        self, support: torch.Tensor, support_labels: torch.Tensor, n_way: int, head: MetricHead
    ) -> LinearHead:
        """The linear head the inner loop starts from: the prototypes' equivalent."""
        prototypes = class_prototypes(prepare(support, head.metric), support_labels, n_way)
        return prototype_linear_head(prototypes, head)

    def adapt_head(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        n_way: int,
        head: MetricHead,
        steps: int,
        learn_rate: Optional[float] = None,
    ) -> LinearHead:
        """Fit a linear head to a support set with `steps` inner-loop steps,
        without gradients to the encoder or the meta-parameters (adaptation).

        learn_rate (Optional[float]): Step size for both the weight and the
            bias; None uses the head's meta-learned step sizes.
        """
        with torch.enable_grad():
            tensors = {k: v.detach() for k, v in head.tensors().items()}
            if learn_rate is not None:
                tensors["log_inner_lr"] = torch.full_like(tensors["log_inner_lr"], learn_rate).log()
            frozen = MetricHead(head.metric, **tensors)
            start = self.initial_head(support.detach(), support_labels, n_way, frozen)
            adapted, _ = inner_loop(
                frozen, start, support.detach(), support_labels, steps, second_order=False
            )
        return LinearHead(adapted.weight.detach(), adapted.bias.detach())


def inner_loop(
    head: MetricHead,
    start: LinearHead,
    support: torch.Tensor,
    support_labels: torch.Tensor,
    steps: int,
    *,
    second_order: bool,
) -> Tuple[LinearHead, List[torch.Tensor]]:
    """Gradient descent on the support loss w.r.t. the linear head, with the
    meta-learned per-layer step sizes (Meta-SGD-style, Li et al. 2017):
    theta' = theta - alpha * grad L_support(theta).

    second_order (bool): Keep the graph of the inner gradients, so the outer
        loss differentiates through them (MAML); False drops them (FOMAML).
    RETURNS (Tuple[LinearHead, List[torch.Tensor]]): The adapted head and the
        support loss before each step.
    """
    weight, bias = start.weight, start.bias
    if not weight.requires_grad:
        weight = weight.clone().requires_grad_(True)
    if not bias.requires_grad:
        bias = bias.clone().requires_grad_(True)
    step_sizes = head.log_inner_lr.exp()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(LinearHead(weight, bias).logits(head, support), support_labels)
        d_weight, d_bias = torch.autograd.grad(loss, (weight, bias), create_graph=second_order)
        weight = weight - step_sizes[0] * d_weight
        bias = bias - step_sizes[1] * d_bias
        losses.append(loss)
    return LinearHead(weight, bias), losses
