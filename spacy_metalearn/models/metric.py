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
PARAM_NAMES = ("log_scale", "log_inner_lr")


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
    """The meta-learned parameters of the prototype head as tensors.

    metric (str): "cosine" or "squared_euclidean".
    log_scale (torch.Tensor): (1,) log of the inverse temperature.
    log_inner_lr (torch.Tensor): (2,) log of the inner-loop step sizes of the
        linear head's weight and bias: learned per layer, as in MAML++'s LSLR
        (Antoniou et al. 2019), not per parameter as in Meta-SGD.
    """

    metric: str
    log_scale: torch.Tensor
    log_inner_lr: torch.Tensor

    def tensors(self) -> Dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def detached(self) -> "MetricHead":
        return MetricHead(self.metric, **{k: v.detach().clone() for k, v in self.tensors().items()})

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
        """(n_query, n_classes) logits: the similarity times the inverse temperature."""
        return self.log_scale.exp() * self.similarity(query, prototypes)
