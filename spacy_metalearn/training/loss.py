"""The meta-learners' objectives on what spacy train feeds the component:
an episode (support and query examples, marked by the episode batcher) or,
for a many-way learner, a batch of labelled texts. Each returns the loss
and its gradient with respect to the embeddings; the head's gradients are
added to its parameters."""

from typing import List, Tuple

import torch
from spacy.training import Example
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..adaptation.support import positive_labels
from ..errors import Errors
from ..learners.base import Learner
from ..models.head import accumulate_head_gradients, metric_head
from ..models.metric import MetricHead
from .episodes import split_episode


def episode_loss(
    learner: Learner, head_model: Model, examples: List[Example], embeddings: Floats2d
) -> Tuple[float, Floats2d]:
    """The learner's objective on one episode, and its gradient. The loss
    returned is the query cross-entropy of the learner's adapted classifier
    (the same measure for every learner, whatever it optimizes)."""
    support, support_labels, query, query_labels = split_episode(examples)
    head = metric_head(head_model, requires_grad=True)
    all_embeddings = xp2torch(embeddings, requires_grad=True)
    device = all_embeddings.device
    query_targets = torch.tensor(query_labels, device=device)
    output = learner(
        all_embeddings[support],
        torch.tensor(support_labels, device=device),
        all_embeddings[query],
        query_targets,
        head,
    )
    output.loss.backward()
    accumulate_head_gradients(head_model, head)
    with torch.no_grad():
        reported = torch.nn.functional.cross_entropy(output.query_logits, query_targets)
    gradient = all_embeddings.grad
    if gradient is None:  # a learner whose objective does not reach the embeddings
        gradient = torch.zeros_like(all_embeddings)
    return float(reported.item()), torch2xp(gradient)


def many_way_loss(
    learner: Learner, head: MetricHead, examples: List[Example], embeddings: Floats2d
) -> Tuple[float, Floats2d]:
    """A many-way learner's loss on a batch (not an episode): every text
    against every class seen so far, by its gold label."""
    labels = []
    for eg in examples:
        positive = positive_labels(eg.reference.cats)
        if len(positive) != 1:
            raise ValueError(Errors.E011.format(n=len(positive), labels=positive))
        labels.append(positive[0])
    all_embeddings = xp2torch(embeddings, requires_grad=True)
    output = learner.batch_loss(all_embeddings, labels, head)
    output.loss.backward()
    return float(output.loss.item()), torch2xp(all_embeddings.grad)
