"""Prototypical Networks (Snell et al., 2017).

Each class is represented by the mean of its support embeddings (eq. 1); a query
is classified by a softmax over negative distances to the prototypes (eq. 2),
and the loss is the negative log-probability of the true class.
"""

import torch.nn.functional as F
from torch import Tensor

from ..models.metric import MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput, check_init_inner_lr, n_classes


class ProtoNet(Learner):
    def __init__(self, init_inner_lr: float = 10.0):
        self.init_inner_lr = init_inner_lr

    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        classifier = self.instant_classifier(
            support, support_labels, n_classes(support_labels), head
        )
        logits = classifier.logits(query)  # (n_query, n_way)
        return LearnerOutput(F.cross_entropy(logits, query_labels), logits)


@registry.meta_learners("spacy_metalearn.ProtoNet.v1")
def make_protonet(init_inner_lr: float = 10.0) -> Learner:
    """Prototypical Networks: no inner loop; the encoder and the head's
    temperature are trained so that nearest-prototype classification works.

    init_inner_lr (float): Step size of adapt(steps > 0), which fits a linear
        head from the prototypes.
    """
    check_init_inner_lr(init_inner_lr)
    return ProtoNet(init_inner_lr)
