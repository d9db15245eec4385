"""Prototypical Networks (Snell et al., 2017).

Each class is represented by the mean of its support embeddings (eq. 1); a query
is classified by a softmax over negative distances to the prototypes (eq. 2),
and the loss is the negative log-probability of the true class.
"""

import torch.nn.functional as F
from torch import Tensor

from ..models.metric import MetricHead, class_prototypes, prepare
from ..registry import registry
from .base import Learner, LearnerOutput


class ProtoNet(Learner):
    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        n_way = int(support_labels.max()) + 1
        prototypes = class_prototypes(prepare(support, head.metric), support_labels, n_way)
        logits = head.logits(query, prototypes)  # (n_query, n_way)
        return LearnerOutput(F.cross_entropy(logits, query_labels), logits)


protonet_loss = ProtoNet()


@registry.meta_learners("spacy_metalearn.ProtoNet.v1")
def make_protonet() -> Learner:
    """Prototypical Networks: no inner loop; the encoder and the head's
    temperature are trained so that nearest-prototype classification works."""
    return protonet_loss
