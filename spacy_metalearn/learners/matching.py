"""Matching Networks (Vinyals et al., 2016), without full context embeddings.

A query's label distribution is an attention-weighted sum of the support
labels, the attention being a softmax over (scaled) cosine similarities between
the query and each support example (eq. 1-2): P(y|x) = sum_i a(x, x_i) y_i.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.metric import MetricHead
from ..registry import registry
from .base import Learner, LearnerOutput


class MatchingNetworks(Learner):
    def __call__(
        self,
        support: Tensor,
        support_labels: Tensor,
        query: Tensor,
        query_labels: Tensor,
        head: MetricHead,
    ) -> LearnerOutput:
        n_way = int(support_labels.max()) + 1
        # the head's similarity: cosine by default, as in the paper
        attention = torch.softmax(head.log_scale.exp() * head.similarity(query, support), dim=1)
        probs = attention @ F.one_hot(support_labels, n_way).to(attention.dtype)  # (n_query, n_way)
        log_probs = torch.log(probs.clamp(min=1e-12))  # guard: a class may get ~0 attention
        return LearnerOutput(F.nll_loss(log_probs, query_labels), log_probs)


@registry.meta_learners("spacy_metalearn.MatchingNetworks.v1")
def make_matching_networks() -> Learner:
    """Matching Networks: attention over the support examples. At prediction
    time the component attends over class prototypes (exact for 1-shot)."""
    return MatchingNetworks()
