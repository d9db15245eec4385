"""What every meta-learner is: a function from one episode to a loss."""

from typing import NamedTuple, Protocol

import torch

from ..models.metric import MetricHead


class LearnerOutput(NamedTuple):
    loss: torch.Tensor  # scalar, differentiable w.r.t. embeddings and head
    query_logits: torch.Tensor  # (n_query, n_way), for episode accuracy


class Learner(Protocol):
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
        ...
