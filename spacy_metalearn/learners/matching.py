"""Matching Networks (Vinyals et al., 2016), without full context embeddings.

A query's label distribution is an attention-weighted sum of the support
labels, the attention being a softmax over (scaled) cosine similarities between
the query and each support example (eq. 1-2): P(y|x) = sum_i a(x, x_i) y_i.
The component keeps every support embedding, so it predicts the same way.
"""

import torch.nn.functional as F
from torch import Tensor

from ..models.classifiers import AttentionClassifier, Classifier
from ..models.metric import MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput, check_init_inner_lr, n_classes


class MatchingNetworks(Learner):
    def __init__(self, init_inner_lr: float = 10.0):
        self.init_inner_lr = init_inner_lr

    def instant_classifier(
        self, support: Tensor, support_labels: Tensor, n_way: int, head: MetricHead
    ) -> Classifier:
        return AttentionClassifier(head, support, support_labels, n_way)

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
        log_probs = classifier.logits(query)
        return LearnerOutput(F.nll_loss(log_probs, query_labels), log_probs)


@registry.meta_learners("spacy_metalearn.MatchingNetworks.v1")
def make_matching_networks(init_inner_lr: float = 10.0) -> Learner:
    """Matching Networks: attention over the support examples, in training and
    at prediction.

    init_inner_lr (float): Step size of adapt(steps > 0), which fits a linear
        head from the prototypes.
    """
    check_init_inner_lr(init_inner_lr)
    return MatchingNetworks(init_inner_lr)
