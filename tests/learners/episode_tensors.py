"""Random episodes and heads for the learner tests."""

import torch

from spacy_metalearn.models.metric import MetricHead


def random_episode(n_way=3, k_shot=2, n_query=4, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    support = torch.randn(n_way * k_shot, dim, generator=gen, requires_grad=True)
    query = torch.randn(n_way * n_query, dim, generator=gen, requires_grad=True)
    support_labels = torch.arange(n_way).repeat_interleave(k_shot)
    query_labels = torch.arange(n_way).repeat_interleave(n_query)
    return support, support_labels, query, query_labels


def make_head(metric="cosine"):
    return MetricHead(
        metric,
        log_scale=torch.zeros(1, requires_grad=True),
        log_inner_lr=torch.full((2,), -1.0, requires_grad=True),
    )
