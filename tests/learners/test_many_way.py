from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from thinc.api import Config

from spacy_metalearn.learners.many_way import make_many_way
from spacy_metalearn.models.metric import MetricHead

from ..training.test_meta_pretraining import held_out_accuracy_before_and_after, write_corpus
from ..util import TOK2VEC_MODEL, synthetic_texts

CONFIGS = Path(__file__).parent.parent.parent / "configs"


def head() -> MetricHead:
    return MetricHead("cosine", torch.zeros(1), torch.zeros(2))


def test_class_weights_start_from_the_normalized_class_means():
    learner = make_many_way(scale=20.0)
    x = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    learner.batch_loss(x, ["a", "a", "b"], head())
    assert list(learner.class_index) == ["a", "b"]
    a_mean = F.normalize(F.normalize(x[:2], dim=-1).mean(0), dim=-1)
    torch.testing.assert_close(learner.class_weights[0].detach(), a_mean)
    torch.testing.assert_close(learner.class_weights[1].detach(), F.normalize(x[2], dim=-1))
    learner.batch_loss(torch.tensor([[1.0, -1.0]]), ["c"], head())  # a new class joins
    assert learner.class_index == {"a": 0, "b": 1, "c": 2}


def test_gradient_is_the_cosine_softmax_one():
    """Baseline++ (Chen et al. 2019): logits s * cos(x, w_c); the gradient of
    their cross-entropy w.r.t. x, in closed form:
    dL/dx = (I - u u^T) / |x| * s * sum_c (p_c - y_c) v_c,
    u = x / |x|, v_c = w_c / |w_c|, p = softmax(s * u . v)."""
    torch.manual_seed(0)
    learner = make_many_way(scale=7.0)
    labels = ["a", "b", "c", "a", "b"]
    x = torch.randn(5, 4)
    learner.batch_loss(x, labels, head())  # the classes get their weights
    with torch.no_grad():
        for row in learner.class_weights:
            row.add_(torch.randn(4))  # weights apart from the means
    x = x.clone().requires_grad_(True)
    learner.batch_loss(x, labels, head()).loss.backward()
    weights = torch.stack([row.detach() for row in learner.class_weights])
    u = x.detach() / x.detach().norm(dim=1, keepdim=True)
    v = weights / weights.norm(dim=1, keepdim=True)
    p = torch.softmax(7.0 * u @ v.T, dim=1)
    y = F.one_hot(learner.targets(labels, x.device), 3).float()
    d_u = 7.0 * (p - y) @ v / len(labels)  # the mean over the batch
    projection = torch.eye(4) - u.unsqueeze(2) * u.unsqueeze(1)
    expected = (projection @ d_u.unsqueeze(2)).squeeze(2) / x.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(x.grad, expected)


def test_a_step_moves_the_class_weights_and_clears_their_gradient():
    learner = make_many_way(class_learn_rate=0.1)
    x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [0.9, 0.5]])
    learner.batch_loss(x, ["a", "b", "a"], head()).loss.backward()
    before = [row.detach().clone() for row in learner.class_weights]
    learner.step()
    assert all(row.grad is None for row in learner.class_weights)
    assert any(not torch.equal(a, row.detach()) for a, row in zip(before, learner.class_weights))


@pytest.mark.parametrize(
    "settings", [{"scale": 0}, {"scale": True}, {"class_learn_rate": -1.0}, {"init_inner_lr": 0}]
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError, match=r"\[E019\]"):
        make_many_way(**settings)


def test_it_has_no_episode_loss():
    support = torch.eye(2)
    with pytest.raises(ValueError, match=r"\[E052\]"):
        make_many_way()(support, torch.tensor([0, 1]), support, torch.tensor([0, 1]), head())


def test_its_config_differs_from_protonets_in_the_learner_and_the_batcher():
    def without(name):
        config = Config().from_disk(CONFIGS / f"{name}.cfg", interpolate=False)
        config["components"]["few_shot_textcat"].pop("learner")
        return config, config["training"].pop("batcher")

    (protonet, _), (many_way, batcher) = without("protonet"), without("many_way")
    assert protonet == many_way
    assert batcher["@batchers"] == "spacy.batch_by_sequence.v1"


def test_many_way_training_improves_held_out_classes(tmp_path):
    """Through `spacy train` with configs/many_way.cfg (a tiny tok2vec, random
    batches of 32 texts): episode accuracy on classes never seen in training
    rises above the untrained model's."""
    train_path = write_corpus(tmp_path / "train.spacy", synthetic_texts(10, 12, seed=0))
    dev_path = write_corpus(
        tmp_path / "dev.spacy", synthetic_texts(10, 12, seed=1, first_class=100)
    )
    config = Config().from_disk(CONFIGS / "many_way.cfg", interpolate=False)
    component = config["components"]["few_shot_textcat"]
    component["model"] = Config().from_str(TOK2VEC_MODEL.format(metric="cosine"))["model"]
    component["learner"]["class_learn_rate"] = 0.01
    component["scorer"].update(
        {"n_way": 5, "k_shot": 2, "n_query": 4, "n_episodes": 100, "group_separator": None}
    )
    config["training"].update({"max_steps": 60, "eval_frequency": 60, "dropout": 0.0})
    config["training"]["optimizer"]["learn_rate"] = 0.01
    config["training"]["batcher"]["size"] = 32
    before, after = held_out_accuracy_before_and_after(tmp_path, config, train_path, dev_path)
    assert after > before + 0.1, (before, after)
