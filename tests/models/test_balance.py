"""Label balance on tensors: the weights, the bias adjustment and the weighted
quantile do what models/balance.py says, and change nothing at even counts."""

import pytest
import torch
import torch.nn.functional as F

from spacy_metalearn.learners.protonet import ProtoNet
from spacy_metalearn.models.balance import (
    LabelBalance,
    log_frequencies,
    row_weights,
    weighted_quantile,
)
from spacy_metalearn.models.calibration import fit_calibration, leave_one_out_similarities
from spacy_metalearn.models.metric import MetricHead

BALANCES = [LabelBalance("logit_adjustment", 1.0), LabelBalance("logit_adjustment", 0.8),
            LabelBalance("reweighting"), LabelBalance("none")]  # fmt: skip


def head() -> MetricHead:
    return MetricHead("cosine", torch.tensor([10.0]).log(), torch.tensor([1.0, 1.0]))


def uneven_support(n_old: int = 200, n_new: int = 3, seed: int = 0):
    """Two overlapping labels in 8 dimensions: 'old' with n_old rows, 'new'
    with n_new, and balanced queries of each."""
    generator = torch.Generator().manual_seed(seed)
    old_mean, new_mean = torch.zeros(8), torch.zeros(8)
    old_mean[0], new_mean[1] = 1.0, 1.0

    def draw(mean, n):
        return mean + 0.6 * torch.randn(n, 8, generator=generator)

    support = torch.cat([draw(old_mean, n_old), draw(new_mean, n_new)])
    labels = torch.tensor([0] * n_old + [1] * n_new)
    queries = torch.cat([draw(old_mean, 500), draw(new_mean, 500)])
    return support, labels, queries, torch.tensor([0] * 500 + [1] * 500)


def test_row_weights_give_every_label_the_same_total_and_a_mean_of_one():
    labels = torch.tensor([0] * 6 + [1] * 2 + [3] * 1)
    weights = row_weights(labels, 4)
    assert weights.mean().item() == pytest.approx(1.0)
    totals = torch.zeros(4, dtype=weights.dtype).index_add(0, labels, weights)
    assert totals[[0, 1, 3]].tolist() == pytest.approx([3.0, 3.0, 3.0])
    assert torch.equal(
        row_weights(torch.tensor([0, 0, 1, 1]), 2), torch.ones(4, dtype=weights.dtype)
    )


def test_label_weights_are_none_where_they_change_nothing():
    even, uneven = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1])
    for balance in BALANCES:
        assert balance.label_weights(even, 3) is None
    assert LabelBalance("none").label_weights(uneven, 2) is None
    assert LabelBalance("reweighting").label_weights(uneven, 2) is not None
    assert LabelBalance("logit_adjustment").label_weights(uneven, 2) is not None


def test_logit_adjustment_takes_tau_times_the_log_frequencies_out_of_the_bias():
    labels = torch.tensor([0] * 9 + [1])
    bias = torch.tensor([0.5, -0.5])
    adjusted = LabelBalance("logit_adjustment", 0.8).adjust_bias(bias, labels, 2)
    expected = bias - 0.8 * torch.log(torch.tensor([0.9, 0.1]))
    assert torch.allclose(adjusted, expected)
    assert torch.equal(LabelBalance("reweighting").adjust_bias(bias, labels, 2), bias)
    # a label with no rows here (a held-out fold) stays finite
    assert torch.isfinite(log_frequencies(torch.tensor([0, 0]), 3)).all()
    # and so do counts far beyond any support set's
    many = torch.cat([torch.zeros(2_000_000, dtype=torch.long), torch.ones(1, dtype=torch.long)])
    assert torch.isfinite(log_frequencies(many, 2)).all()


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_with_even_counts_every_balance_predicts_the_same(tau):
    support, labels, queries, _ = uneven_support(n_old=6, n_new=6)
    learner = ProtoNet()
    plain = learner.adapt(support, labels, 2, head(), steps=20, learn_rate=5.0)
    for balance in [*BALANCES, LabelBalance("logit_adjustment", tau)]:
        balanced = learner.adapt(
            support, labels, 2, head(), steps=20, learn_rate=5.0, balance=balance
        )
        assert torch.allclose(
            torch.softmax(balanced.logits(queries), 1),
            torch.softmax(plain.logits(queries), 1),
            atol=1e-6,
        )


def test_a_label_with_few_rows_is_recognized_once_balanced():
    """200 rows of one label beside 3 of another: the head fitted without
    balance learns the frequencies and drowns the rare label; both balances
    recognize it far more often, at some cost to the frequent one."""
    support, labels, queries, query_labels = uneven_support()
    learner = ProtoNet()

    def recall(balance):
        classifier = learner.adapt(
            support, labels, 2, head(), steps=100, learn_rate=30.0, balance=balance
        )
        predicted = classifier.logits(queries).argmax(1)
        return [(predicted[query_labels == c] == c).float().mean().item() for c in (0, 1)]

    old_none, new_none = recall(LabelBalance("none"))
    for balance in BALANCES[:3]:
        old, new = recall(balance)
        assert new > new_none + 0.1
        assert old > 0.7
    assert (
        recall(LabelBalance("logit_adjustment", 1.0))[1]
        > recall(LabelBalance("logit_adjustment", 0.5))[1]
    )


def test_reweighting_minimises_the_mean_of_each_labels_mean_loss():
    support, labels, _, _ = uneven_support(n_old=20, n_new=4)
    classifier = ProtoNet().adapt(
        support, labels, 2, head(), steps=1, learn_rate=1.0, balance=LabelBalance("reweighting")
    )
    # one step from the start, by hand
    start = ProtoNet().start(F.normalize(support, dim=-1), labels, 2, head())
    weight = start.weight.clone().requires_grad_(True)
    bias = start.bias.clone().requires_grad_(True)
    rows = F.cross_entropy(F.normalize(support, dim=-1) @ weight.T + bias, labels, reduction="none")
    loss = (rows[labels == 0].mean() + rows[labels == 1].mean()) / 2
    d_weight, d_bias = torch.autograd.grad(loss, (weight, bias))
    assert torch.allclose(classifier.weight, start.weight - d_weight, atol=1e-5)
    assert torch.allclose(classifier.bias, start.bias - d_bias, atol=1e-5)


@pytest.mark.parametrize("q", [0.0, 0.03, 0.25, 0.5, 0.9, 1.0])
def test_the_weighted_quantile_with_equal_weights_is_torchs(q):
    values = torch.randn(37, generator=torch.Generator().manual_seed(1)).double()
    assert weighted_quantile(values, q).item() == torch.quantile(values, q).item()
    equal = weighted_quantile(values, q, torch.ones(37, dtype=torch.float64))
    assert equal.item() == pytest.approx(torch.quantile(values, q).item(), abs=1e-12)


def test_the_weighted_quantile_gives_a_small_label_its_share():
    """100 high scores of one label and 4 low ones of another: unweighted,
    the 10% quantile is among the high ones; each label weighing the same,
    the low label's scores are half the mass and the quantile is among them."""
    values = torch.cat([torch.linspace(0.8, 0.9, 100), torch.linspace(0.1, 0.2, 4)]).double()
    labels = torch.tensor([0] * 100 + [1] * 4)
    weights = LabelBalance("logit_adjustment").label_weights(labels, 2)
    assert torch.quantile(values, 0.1).item() > 0.8
    assert weighted_quantile(values, 0.1, weights).item() < 0.2
    assert weighted_quantile(values, 0.0, weights).item() == pytest.approx(0.1)
    assert weighted_quantile(values, 1.0, weights).item() == pytest.approx(0.9)


def test_the_calibration_weighs_each_labels_examples_the_same():
    support, labels, _, _ = uneven_support(n_old=6, n_new=6)
    even = fit_calibration(*leave_one_out_similarities(support, labels, 2, head()))
    balanced = fit_calibration(
        *leave_one_out_similarities(support, labels, 2, head(), LabelBalance("logit_adjustment"))
    )
    assert balanced == pytest.approx(even, abs=1e-9)
    # uneven: the weights are each example's one over its label's count
    support, labels, _, _ = uneven_support(n_old=12, n_new=3)
    similarities, targets, weights = leave_one_out_similarities(
        support, labels, 2, head(), LabelBalance("logit_adjustment")
    )
    positives = weights[targets == 1]
    assert positives[:12].sum().item() == pytest.approx(positives[12:].sum().item())
    assert fit_calibration(similarities, targets, weights) != pytest.approx(
        fit_calibration(similarities, targets), abs=1e-6
    )
