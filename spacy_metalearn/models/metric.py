"""Distance-based scores between embeddings and class prototypes, in PyTorch.

One implementation serves meta-training (the learners), adaptation and
prediction, so that what is trained is exactly what is used.
"""

from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F

from ..errors import Errors

METRICS = ("cosine", "squared_euclidean")
PARAM_NAMES = ("log_scale", "bias", "log_inner_lr")


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(Errors.E022.format(metric=metric, choices=", ".join(METRICS)))
    return metric


def prepare(embeddings: torch.Tensor, metric: str) -> torch.Tensor:
    """Map encoder outputs into the space where prototypes are averaged: unit
    length for cosine (so that each support example weighs the same), as they
    are for squared Euclidean distance."""
    if metric == "cosine":
        # eps guards the all-zero vector of an empty text
        return F.normalize(embeddings, dim=-1, eps=1e-12)
    return embeddings


def class_prototypes(
    support: torch.Tensor, support_labels: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Mean of the (prepared) support embeddings of each class.

    support (torch.Tensor): (n_support, dim) prepared support embeddings.
    support_labels (torch.Tensor): (n_support,) class index of each row, 0..n_way-1.
    n_way (int): The number of classes.
    RETURNS (torch.Tensor): prototypes, (n_way, dim).
    """
    sums = torch.zeros(n_way, support.shape[1], dtype=support.dtype, device=support.device)
    sums = sums.index_add(0, support_labels, support)
    counts = torch.bincount(support_labels, minlength=n_way).clamp(min=1)
    return sums / counts.unsqueeze(1).to(support.dtype)


@dataclass
class MetricHead:
    """The parameters of the prototype head as tensors.

    metric (str): "cosine" or "squared_euclidean".
    log_scale (torch.Tensor): (1,) log of the inverse temperature.
    bias (torch.Tensor): (1,) offset, which only matters for independent
        (multi-label) scores: it cancels out in a softmax.
    log_inner_lr (torch.Tensor): (2,) log of the inner-loop step sizes of the
        linear head's weight and bias (MAML family; meta-learned per layer).
    """

    metric: str
    log_scale: torch.Tensor
    bias: torch.Tensor
    log_inner_lr: torch.Tensor

    def tensors(self) -> Dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def similarity(self, query: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """(n_query, n_classes) similarities: cosine, or negative squared distance."""
        if self.metric == "cosine":
            return prepare(query, "cosine") @ prepare(prototypes, "cosine").T
        # ||q - p||^2 = |q|^2 - 2 q.p + |p|^2, without a (n_query, n_classes, dim) tensor
        sq_dist = (
            query.pow(2).sum(1, keepdim=True)
            - 2 * query @ prototypes.T
            + prototypes.pow(2).sum(1).unsqueeze(0)
        )
        return -sq_dist.clamp(min=0.0)

    def logits(self, query: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """(n_query, n_classes) logits: scaled similarity plus bias."""
        return self.log_scale.exp() * self.similarity(query, prototypes) + self.bias


@dataclass
class LinearHead:
    """A per-class linear classifier over prepared embeddings, as the MAML
    family adapts it: logits = prepare(x) @ weight.T + bias + head.bias. The
    temperature is not applied here (it would multiply the inner step size by
    its square); Proto-MAML builds it into the initial weights.

    weight (torch.Tensor): (n_classes, dim).
    bias (torch.Tensor): (n_classes,).
    """

    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, head: MetricHead, query: torch.Tensor) -> torch.Tensor:
        return prepare(query, head.metric) @ self.weight.T + self.bias + head.bias


def prototype_linear_head(prototypes: torch.Tensor, head: MetricHead) -> LinearHead:
    """The linear head that scores like the prototypes (Proto-MAML, Triantafillou
    et al. 2020): for squared Euclidean distance, weight 2c and bias -|c|^2 give
    the same softmax as -|x - c|^2; for cosine, the unit prototypes; both times
    the head's inverse temperature."""
    scale = head.log_scale.exp()
    if head.metric == "cosine":
        weight = scale * prepare(prototypes, "cosine")
        return LinearHead(weight, torch.zeros_like(weight[:, 0]))
    return LinearHead(scale * 2 * prototypes, -scale * prototypes.pow(2).sum(1))
