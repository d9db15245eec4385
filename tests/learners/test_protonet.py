import torch

from spacy_metalearn.learners.protonet import ProtoNet
from spacy_metalearn.registry import registry

from .episode_tensors import make_head, random_episode

protonet_loss = ProtoNet()


def test_registered():
    assert isinstance(registry.meta_learners.get("spacy_metalearn.ProtoNet.v1")(), ProtoNet)


def test_shapes_and_gradients_reach_embeddings_and_temperature():
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    output = protonet_loss(support, support_labels, query, query_labels, head)
    assert output.loss.dim() == 0
    assert output.query_logits.shape == (12, 3)
    output.loss.backward()
    assert support.grad is not None and support.grad.abs().sum() > 0
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert head.log_scale.grad is not None and head.log_scale.grad.abs().item() > 0


def test_matches_the_paper_equations():
    """Prototype = class mean; p(y=k|x) = softmax(-d(f(x), c_k)); loss = -log p."""
    support, support_labels, query, query_labels = random_episode(dim=5)
    head = make_head("squared_euclidean")
    prototypes = torch.stack([support[support_labels == k].mean(0) for k in range(3)])
    log_p = torch.log_softmax(-torch.cdist(query, prototypes).pow(2), dim=1)
    expected = -log_p[torch.arange(len(query)), query_labels].mean()
    output = protonet_loss(support, support_labels, query, query_labels, head)
    assert torch.allclose(output.loss, expected, atol=1e-5)


def test_gradient_descent_on_embeddings_lowers_the_loss():
    support, support_labels, query, query_labels = random_episode()
    head = make_head()
    losses = []
    optimizer = torch.optim.SGD([support, query, head.log_scale], lr=0.5)
    for _ in range(30):
        optimizer.zero_grad()
        output = protonet_loss(support, support_labels, query, query_labels, head)
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert losses[-1] < 0.5 * losses[0]
