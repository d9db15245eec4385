import pytest
import torch

from spacy_metalearn.models.metric import LinearHead, prototype_linear_head
from spacy_metalearn.registry import registry

from .episode_tensors import make_head, random_episode

LEARNERS = {
    "spacy_metalearn.ProtoNet.v1": {},
    "spacy_metalearn.MatchingNetworks.v1": {},
    "spacy_metalearn.MAML.v1": {"inner_steps": 3},
    "spacy_metalearn.MAML.v1 first order": {"inner_steps": 3, "first_order": True},
    "spacy_metalearn.ProtoMAML.v1": {"inner_steps": 3},
    "spacy_metalearn.Reptile.v1": {"inner_steps": 3},
}


def make(name):
    return registry.meta_learners.get(name.split()[0])(**LEARNERS[name])


@pytest.mark.parametrize("name", LEARNERS)
def test_shapes_and_gradients_reach_the_embeddings(name):
    support, support_labels, query, query_labels = random_episode()
    output = make(name)(support, support_labels, query, query_labels, make_head())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    assert output.query_logits.shape == (12, 3)
    output.loss.backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    if name != "spacy_metalearn.MAML.v1 first order":
        assert support.grad is not None and support.grad.abs().sum() > 0


def test_first_order_maml_drops_the_support_path():
    """FOMAML treats inner gradients as constants: from the zero init, the support
    embeddings get no gradient (second-order MAML's do), and the step sizes get
    a different one."""
    grads = {}
    for first_order in (False, True):
        support, support_labels, query, query_labels = random_episode()
        learner = registry.meta_learners.get("spacy_metalearn.MAML.v1")(
            inner_steps=2, first_order=first_order
        )
        head = make_head()
        learner(support, support_labels, query, query_labels, head).loss.backward()
        grads[first_order] = (support.grad, head.log_inner_lr.grad.clone())
    assert grads[False][0].abs().sum() > 0
    assert grads[True][0] is None
    assert not torch.allclose(grads[False][1], grads[True][1])


def test_second_order_gradients_differ_from_first_order_in_proto_maml():
    grads = {}
    for first_order in (False, True):
        support, support_labels, query, query_labels = random_episode()
        learner = registry.meta_learners.get("spacy_metalearn.ProtoMAML.v1")(
            inner_steps=2, first_order=first_order
        )
        learner(support, support_labels, query, query_labels, make_head()).loss.backward()
        grads[first_order] = support.grad
    assert grads[True].abs().sum() > 0
    assert not torch.allclose(grads[False], grads[True], atol=1e-6)


@pytest.mark.parametrize("name", ["spacy_metalearn.MAML.v1", "spacy_metalearn.ProtoMAML.v1"])
def test_inner_step_sizes_are_meta_learned(name):
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    make(name)(support, support_labels, query, query_labels, head).loss.backward()
    assert head.log_inner_lr.grad is not None
    assert (head.log_inner_lr.grad != 0).all()


def test_reptile_moves_weights_toward_the_adapted_ones():
    """The gradient of Reptile's loss w.r.t. the weights the inner loop starts
    from is (theta - phi_k) / alpha: a descent step moves theta toward phi_k."""
    from spacy_metalearn.learners.reptile import reptile_trajectory

    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    gen = torch.Generator().manual_seed(3)
    theta = LinearHead(
        torch.randn(3, 8, generator=gen).requires_grad_(True), torch.zeros(3, requires_grad=True)
    )
    features = torch.cat([support, query])
    labels = torch.cat([support_labels, query_labels])
    total, adapted = reptile_trajectory(head, theta, features, labels, steps=3)
    total.backward()
    alpha = head.log_inner_lr.exp().detach()
    phi = adapted.weight.detach()
    assert torch.allclose(theta.weight.grad, (theta.weight.detach() - phi) / alpha[0], atol=1e-5)
    moved = theta.weight.detach() - 0.5 * alpha[0] * theta.weight.grad
    assert (moved - phi).norm() < (theta.weight.detach() - phi).norm()


def test_reptile_learner_does_not_meta_learn_step_sizes():
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    make("spacy_metalearn.Reptile.v1")(
        support, support_labels, query, query_labels, head
    ).loss.backward()
    assert head.log_inner_lr.grad is None
    assert support.grad.abs().sum() > 0 and query.grad.abs().sum() > 0


def test_matching_networks_follow_the_paper():
    """P(y = k | x) = sum over support i of softmax_i(s * cos(x, x_i)) [y_i = k]."""
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    output = make("spacy_metalearn.MatchingNetworks.v1")(
        support, support_labels, query, query_labels, head
    )
    cos = torch.nn.functional.cosine_similarity(query[:, None], support[None], dim=2)
    attention = torch.softmax(cos, dim=1)  # scale exp(0) = 1
    probs = torch.stack([attention[:, support_labels == k].sum(1) for k in range(3)], dim=1)
    assert torch.allclose(output.query_logits.exp(), probs, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "squared_euclidean"])
def test_proto_maml_starts_as_a_protonet(metric):
    support, support_labels, query, _ = random_episode()
    head = make_head(metric)
    from spacy_metalearn.models.metric import class_prototypes, prepare

    prototypes = class_prototypes(prepare(support, metric), support_labels, 3)
    linear = prototype_linear_head(prototypes, head).logits(head, query)
    metric_logits = head.logits(query, prototypes)
    assert torch.allclose(linear.softmax(1), metric_logits.softmax(1), atol=1e-5)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_inner_loop_adaptation_fits_the_support(name):
    support, support_labels, _, _ = random_episode(k_shot=4)
    head = make_head()
    learner = make(name)
    fitted = learner.adapt_head(support, support_labels, 3, head, steps=50)
    start = learner.initial_head(support, support_labels, 3, head)
    loss = torch.nn.functional.cross_entropy
    assert loss(fitted.logits(head, support), support_labels) < loss(
        start.logits(head, support), support_labels
    )
    assert not fitted.weight.requires_grad


@pytest.mark.parametrize(
    "name",
    ["spacy_metalearn.MAML.v1", "spacy_metalearn.ProtoMAML.v1", "spacy_metalearn.Reptile.v1"],
)
def test_bad_inner_steps_raise(name):
    with pytest.raises(ValueError, match=r"\[E019\] inner_steps"):
        registry.meta_learners.get(name)(inner_steps=0)
