import math

import numpy
import pytest
import torch

from spacy_metalearn.models.head import build_prototype_head
from spacy_metalearn.models.metric import MetricHead, class_prototypes, prepare


def make_head(metric, scale=2.0):
    return MetricHead(
        metric, log_scale=torch.tensor([math.log(scale)]), log_inner_lr=torch.zeros(2)
    )


def test_class_prototypes_are_class_means():
    support = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    prototypes = class_prototypes(support, torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(prototypes, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))


def test_cosine_logits():
    head = make_head("cosine")
    query = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    expected = 2.0 * torch.tensor([[1.0, 0.0], [2**-0.5, 2**-0.5]])
    assert torch.allclose(head.logits(query, prototypes), expected, atol=1e-6)


def test_squared_euclidean_logits():
    head = make_head("squared_euclidean")
    query = torch.randn(4, 3)
    prototypes = torch.randn(5, 3)
    expected = -2.0 * torch.cdist(query, prototypes).pow(2)
    assert torch.allclose(head.logits(query, prototypes), expected, atol=1e-5)


def test_prepare_normalizes_only_for_cosine():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(prepare(x, "cosine"), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.equal(prepare(x, "squared_euclidean"), x)


@pytest.mark.parametrize("metric", ["cosine", "squared_euclidean"])
def test_head_layer_backprop_matches_finite_differences(metric):
    head = build_prototype_head(metric=metric, init_scale=3.0)
    head.initialize()
    rng = numpy.random.default_rng(0)
    query = rng.normal(size=(3, 4)).astype("float32")
    prototypes = rng.normal(size=(2, 4)).astype("float32")
    d_logits = rng.normal(size=(3, 2)).astype("float32")
    logits, backprop = head.begin_update((query, prototypes))
    d_query, _ = backprop(d_logits)
    eps = 1e-3
    for i, j in [(0, 0), (2, 3)]:
        shifted = query.copy()
        shifted[i, j] += eps
        numeric = ((head.predict((shifted, prototypes)) - logits) * d_logits).sum() / eps
        assert d_query[i, j] == pytest.approx(numeric, rel=0.05, abs=1e-2)
    assert head.get_grad("log_scale")[0] == pytest.approx(
        float((logits * d_logits).sum()), rel=1e-4
    )
