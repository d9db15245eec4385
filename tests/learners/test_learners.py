"""Each learner against its paper: the loss on tiny tensors, and its gradient
against finite differences of a hand-unrolled numpy computation
(hand_unrolled.py), MAML's second-order term included."""

import numpy
import pytest
import torch

from spacy_metalearn.learners.reptile import reptile_loss
from spacy_metalearn.models.classifiers import LinearClassifier, prototype_start
from spacy_metalearn.models.metric import MetricHead, class_prototypes, prepare
from spacy_metalearn.registry import registry

from . import hand_unrolled as hand
from .episode_tensors import make_head, random_episode

LEARNERS = {
    "spacy_metalearn.ProtoNet.v1": {},
    "spacy_metalearn.MatchingNetworks.v1": {},
    "spacy_metalearn.MAML.v1": {"inner_steps": 3},
    "spacy_metalearn.MAML.v1 first order": {"inner_steps": 3, "first_order": True},
    "spacy_metalearn.ProtoMAML.v1": {"inner_steps": 3},
    "spacy_metalearn.ProtoMAML.v1 first order": {"inner_steps": 3, "first_order": True},
    "spacy_metalearn.Reptile.v1": {"inner_steps": 3},
}
LOG_SCALE = 0.7
LOG_INNER_LR = (0.3, -0.2)
STEPS = 3


def make(name):
    return registry.meta_learners.get(name.split()[0])(**LEARNERS[name])


def episode64(seed=0):
    """A float64 episode (3-way 2-shot, 2 queries, width 4) as numpy and torch."""
    rng = numpy.random.default_rng(seed)
    support, query = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    labels = numpy.repeat(numpy.arange(3), 2)
    return support, labels, query, labels.copy()


def autograd(name, support, labels, query, query_labels):
    """The learner's loss and its gradients w.r.t. support, query, log_scale
    and log_inner_lr."""
    tensors = [torch.tensor(a, requires_grad=True) for a in (support, query)]
    head = MetricHead(
        "cosine",
        log_scale=torch.tensor([LOG_SCALE], dtype=torch.float64, requires_grad=True),
        log_inner_lr=torch.tensor(LOG_INNER_LR, dtype=torch.float64, requires_grad=True),
    )
    output = make(name)(
        tensors[0], torch.tensor(labels), tensors[1], torch.tensor(query_labels), head
    )
    output.loss.backward()

    def grad(t):
        return numpy.zeros(t.shape) if t.grad is None else t.grad.numpy()

    return output, [grad(t) for t in (*tensors, head.log_scale, head.log_inner_lr)]


def check(name, reference):
    """reference(support, query, log_scale, log_inner_lr) -> loss, in numpy."""
    support, labels, query, query_labels = episode64()
    output, grads = autograd(name, support, labels, query, query_labels)
    point = [support, query, numpy.array([LOG_SCALE]), numpy.array(LOG_INNER_LR)]
    for i, analytic in enumerate(grads):

        def f(x, i=i):
            return reference(*[x if j == i else p for j, p in enumerate(point)])

        numeric = hand.numeric_gradient(f, point[i])
        assert numpy.allclose(analytic, numeric, atol=1e-6), (i, analytic, numeric)
    return output


def test_protonet_gradient_is_the_papers():
    output = check(
        "spacy_metalearn.ProtoNet.v1",
        lambda s, q, ls, lr: hand.protonet_loss(s, episode64()[1], q, episode64()[3], ls[0]),
    )
    support, labels, query, query_labels = episode64()
    assert output.loss.item() == pytest.approx(
        hand.protonet_loss(support, labels, query, query_labels, LOG_SCALE)
    )


def test_matching_networks_gradient_is_the_papers():
    check(
        "spacy_metalearn.MatchingNetworks.v1",
        lambda s, q, ls, lr: hand.matching_loss(s, episode64()[1], q, episode64()[3], ls[0]),
    )


def test_maml_second_order_gradient_is_the_papers():
    """Through the unrolled inner loop: the support embeddings and the step
    sizes get their gradient only through the second-order terms."""
    _, labels, _, query_labels = episode64()
    check(
        "spacy_metalearn.MAML.v1",
        lambda s, q, ls, lr: hand.maml_loss(s, labels, q, query_labels, lr, STEPS),
    )


def test_first_order_maml_treats_inner_gradients_as_constants():
    """FOMAML: the same unrolled loss with each inner gradient frozen at its
    value; from the zero start the support gets no gradient at all."""
    support, labels, query, query_labels = episode64()
    n = 3
    _, _, frozen = hand.sgd_steps(
        numpy.zeros((n, 4)), numpy.zeros(n), support, labels, numpy.exp(LOG_INNER_LR), STEPS
    )
    check(
        "spacy_metalearn.MAML.v1 first order",
        lambda s, q, ls, lr: hand.maml_loss(s, labels, q, query_labels, lr, STEPS, frozen),
    )
    _, grads = autograd("spacy_metalearn.MAML.v1 first order", support, labels, query, query_labels)
    assert numpy.abs(grads[0]).max() == 0.0


def test_proto_maml_second_order_gradient_is_the_papers():
    _, labels, _, query_labels = episode64()
    check(
        "spacy_metalearn.ProtoMAML.v1",
        lambda s, q, ls, lr: hand.proto_maml_loss(s, labels, q, query_labels, ls[0], lr, STEPS),
    )


def test_first_order_proto_maml_gradient():
    """First order: the inner gradients are constants, but the start (the
    prototypes) still depends on the support."""
    support, labels, query, query_labels = episode64()
    weight, bias = hand.proto_start(support, labels, LOG_SCALE)
    _, _, frozen = hand.sgd_steps(weight, bias, support, labels, numpy.exp(LOG_INNER_LR), STEPS)
    check(
        "spacy_metalearn.ProtoMAML.v1 first order",
        lambda s, q, ls, lr: hand.proto_maml_loss(
            s, labels, q, query_labels, ls[0], lr, STEPS, frozen
        ),
    )


def test_reptile_gradient_is_the_papers_update():
    """theta <- theta + eps (phi_k - theta): the gradient of Reptile's objective
    is that of 0.5 |theta - phi_k|^2 / alpha with phi_k (k SGD steps on the
    episode's support and queries from theta) held constant, carried into the
    support embeddings and the temperature that make theta; the step sizes are
    not meta-learned."""
    support, labels, query, query_labels = episode64()
    weight, bias = hand.proto_start(support, labels, LOG_SCALE)
    alpha = numpy.exp(LOG_INNER_LR)
    task, task_labels = (
        numpy.concatenate([support, query]),
        numpy.concatenate([labels, query_labels]),
    )
    phi_w, phi_b, _ = hand.sgd_steps(weight, bias, task, task_labels, alpha, STEPS)
    adapted_w, adapted_b, _ = hand.sgd_steps(weight, bias, support, labels, alpha, STEPS)
    output = check(
        "spacy_metalearn.Reptile.v1",
        lambda s, q, ls, lr: hand.reptile_objective(
            s, labels, ls[0], numpy.array(LOG_INNER_LR), (phi_w, phi_b)
        ),
    )
    # the reported logits come from k steps on the support alone, as adapt() gives
    expected = hand.normalize(query) @ adapted_w.T + adapted_b
    assert numpy.allclose(output.query_logits.detach().numpy(), expected)


def test_reptile_step_moves_the_start_toward_the_adapted_weights():
    gen = torch.Generator().manual_seed(3)
    theta = LinearClassifier(
        torch.randn(3, 8, generator=gen, requires_grad=True),
        torch.zeros(3, requires_grad=True),
        "cosine",
    )
    phi = LinearClassifier(
        torch.randn(3, 8, generator=gen), torch.randn(3, generator=gen), "cosine"
    )
    alpha = torch.tensor([2.0, 4.0])
    reptile_loss(theta, phi, alpha).backward()
    assert torch.allclose(theta.weight.grad, (theta.weight.detach() - phi.weight) / alpha[0])
    assert torch.allclose(theta.bias.grad, (theta.bias.detach() - phi.bias) / alpha[1])


@pytest.mark.parametrize("name", LEARNERS)
def test_shapes_and_the_embeddings_get_a_gradient(name):
    support, support_labels, query, query_labels = random_episode()
    output = make(name)(support, support_labels, query, query_labels, make_head())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    assert output.query_logits.shape == (12, 3)
    output.loss.backward()
    reached = [t.grad is not None and t.grad.abs().sum() > 0 for t in (support, query)]
    assert any(reached)


@pytest.mark.parametrize(
    "name,learned",
    [
        ("spacy_metalearn.MAML.v1", True),
        ("spacy_metalearn.ProtoMAML.v1", True),
        ("spacy_metalearn.Reptile.v1", False),
    ],
)
def test_which_learners_meta_learn_the_step_sizes(name, learned):
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    make(name)(support, support_labels, query, query_labels, head).loss.backward()
    has_grad = head.log_inner_lr.grad is not None and bool((head.log_inner_lr.grad != 0).all())
    assert has_grad == learned


def test_a_shared_start_gets_no_meta_gradient():
    """Why MAML starts from zeros: a start row shared by every class (classes
    are renumbered in each episode) leaves the softmax unchanged at every inner
    step, so its meta-gradient is zero."""
    from spacy_metalearn.learners.base import inner_loop

    support, support_labels, query, query_labels = random_episode()
    shared = torch.randn(8, requires_grad=True)
    start = LinearClassifier(shared.expand(3, 8), torch.zeros(3), "cosine")
    adapted, _ = inner_loop(
        start, support, support_labels, torch.tensor([1.0, 1.0]), 3, second_order=True
    )
    loss = torch.nn.functional.cross_entropy(adapted.logits(query), query_labels)
    loss.backward()
    assert shared.grad.abs().max() < 1e-6


@pytest.mark.parametrize("metric", ["cosine", "squared_euclidean"])
def test_proto_maml_starts_as_a_protonet(metric):
    support, support_labels, query, _ = random_episode()
    head = make_head(metric)
    prototypes = class_prototypes(prepare(support, metric), support_labels, 3)
    linear = prototype_start(support, support_labels, 3, head).logits(query)
    assert torch.allclose(linear.softmax(1), head.logits(query, prototypes).softmax(1), atol=1e-5)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_adaptation_fits_the_support(name):
    support, support_labels, _, _ = random_episode(k_shot=4)
    head = make_head()
    learner = make(name)
    fitted = learner.adapt(support, support_labels, 3, head, steps=50)
    start = learner.start(support, support_labels, 3, head)
    loss = torch.nn.functional.cross_entropy
    assert loss(fitted.logits(support), support_labels) < loss(
        start.logits(support), support_labels
    )
    assert not fitted.weight.requires_grad


def test_matching_networks_adapt_to_attention_over_the_examples():
    """With no inner-loop steps, Matching Networks predict as they train."""
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    learner = make("spacy_metalearn.MatchingNetworks.v1")
    trained = learner(support, support_labels, query, query_labels, head).query_logits
    adapted = learner.adapt(support, support_labels, 3, head, steps=0).logits(query)
    assert torch.allclose(trained, adapted)


@pytest.mark.parametrize(
    "name",
    ["spacy_metalearn.MAML.v1", "spacy_metalearn.ProtoMAML.v1", "spacy_metalearn.Reptile.v1"],
)
@pytest.mark.parametrize("setting,value", [("inner_steps", 0), ("init_inner_lr", 0.0)])
def test_bad_settings_raise(name, setting, value):
    with pytest.raises(ValueError, match=rf"\[E019\] {setting}"):
        registry.meta_learners.get(name)(**{setting: value})
