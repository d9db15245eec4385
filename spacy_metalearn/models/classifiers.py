"""What adaptation produces: a classifier over embeddings for the labels of one
support set. The learners build them (in training and at adapt()), the
component predicts with them, evaluation scores episodes with them."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .metric import MetricHead, class_prototypes, prepare


class Classifier:
    """Maps (n_query, width) embeddings to (n_query, n_classes) logits."""

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class PrototypeClassifier(Classifier):
    """Nearest prototype (Snell et al. 2017): scaled similarity to class means.

    head (MetricHead): The metric and its inverse temperature.
    prototypes (torch.Tensor): (n_classes, width) prepared class means.
    """

    head: MetricHead
    prototypes: torch.Tensor

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        return self.head.logits(query, self.prototypes)


@dataclass
class LinearClassifier(Classifier):
    """A linear layer over prepared embeddings, as the MAML family adapts it:
    logits = prepare(x) @ weight.T + bias. The temperature is not applied here
    (it would multiply the inner step size by its square); a start from the
    prototypes builds it into the weights.

    weight (torch.Tensor): (n_classes, width).
    bias (torch.Tensor): (n_classes,).
    metric (str): How embeddings are prepared ("cosine": unit length).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    metric: str

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        return prepare(query, self.metric) @ self.weight.T + self.bias


@dataclass
class AttentionClassifier(Classifier):
    """Matching Networks (Vinyals et al. 2016, eq. 1-2): a query's label
    distribution is the attention-weighted sum of the support labels, the
    attention a softmax over scaled similarities to every support example.
    `logits` are log-probabilities.

    head (MetricHead): The similarity and its inverse temperature.
    support (torch.Tensor): (n_support, width) support embeddings.
    support_labels (torch.Tensor): (n_support,) class indices.
    n_classes (int): The number of classes.
    """

    head: MetricHead
    support: torch.Tensor
    support_labels: torch.Tensor
    n_classes: int

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        similarity = self.head.log_scale.exp() * self.head.similarity(query, self.support)
        attention = torch.softmax(similarity, dim=1)
        one_hot = F.one_hot(self.support_labels, self.n_classes).to(attention.dtype)
        # guard: a class may get ~0 attention
        return torch.log((attention @ one_hot).clamp(min=1e-12))


def prototype_classifier(
    support: torch.Tensor, support_labels: torch.Tensor, n_classes: int, head: MetricHead
) -> PrototypeClassifier:
    prototypes = class_prototypes(prepare(support, head.metric), support_labels, n_classes)
    return PrototypeClassifier(head, prototypes)


def prototype_start(
    support: torch.Tensor, support_labels: torch.Tensor, n_classes: int, head: MetricHead
) -> LinearClassifier:
    """The linear classifier that scores like the prototypes (Proto-MAML,
    Triantafillou et al. 2020): for squared Euclidean distance, weight 2c and
    bias -|c|^2 give the same softmax as -|x - c|^2; for cosine, the unit
    prototypes; both times the head's inverse temperature."""
    prototypes = class_prototypes(prepare(support, head.metric), support_labels, n_classes)
    scale = head.log_scale.exp()
    if head.metric == "cosine":
        weight = scale * prepare(prototypes, "cosine")
        return LinearClassifier(weight, torch.zeros_like(weight[:, 0]), head.metric)
    return LinearClassifier(scale * 2 * prototypes, -scale * prototypes.pow(2).sum(1), head.metric)


def zero_start(
    support: torch.Tensor, support_labels: torch.Tensor, n_classes: int, head: MetricHead
) -> LinearClassifier:
    """All-zero weights: MAML's start. Classes are renumbered in every episode,
    so a learned start would have to be one row shared by all classes, and a
    row added to every class leaves a softmax unchanged at every inner step:
    its meta-gradient is zero, so zero is the start (Ye & Chao 2022)."""
    weight = support.new_zeros((n_classes, support.shape[1]))
    return LinearClassifier(weight, weight[:, 0].clone(), head.metric)
