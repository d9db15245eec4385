"""label_balance and logit_adjustment_tau on the component: checked, saved,
applied to the fitted head, kept when adapting in parts, and a pipeline saved
before them loads as it was adapted."""

import math

import pytest
import spacy
import srsly
import torch

from spacy_metalearn.adaptation.deep import episode_loss
from spacy_metalearn.models.balance import LabelBalance, weighted_quantile

from ..util import SUPPORT, synthetic_texts, tiny_nlp

# one label with many examples beside labels with few
UNEVEN = {"card_lost": SUPPORT["card_lost"] * 4, "refund": SUPPORT["refund"][:1],
          "weather": SUPPORT["weather"]}  # fmt: skip
QUERIES = ["someone stole my card", "my refund never arrived", "is it raining"]


def cats(nlp):
    return [doc.cats for doc in nlp.pipe(QUERIES)]


def test_the_default_is_logit_adjustment_with_tau_0_8():
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    assert (fs.cfg["label_balance"], fs.cfg["logit_adjustment_tau"]) == ("logit_adjustment", 0.7)


@pytest.mark.parametrize(
    "setting,value",
    [("label_balance", "balanced"), ("label_balance", ""), ("logit_adjustment_tau", 1.5),
     ("logit_adjustment_tau", -0.1), ("logit_adjustment_tau", "1")],
)  # fmt: skip
def test_bad_balance_settings_raise(setting, value):
    with pytest.raises(ValueError, match=rf"\[E019\] {setting}"):
        tiny_nlp(**{setting: value})


def test_logit_adjustment_takes_the_log_frequencies_out_of_the_fitted_bias():
    """The same head as without balance, its bias less tau times each
    label's log share of the rows (examples and its name)."""
    fitted = {}
    for balance in ("none", "logit_adjustment"):
        nlp = tiny_nlp(label_balance=balance, logit_adjustment_tau=0.5)
        nlp.get_pipe("few_shot_textcat").adapt(UNEVEN)
        fitted[balance] = nlp.get_pipe("few_shot_textcat").adaptation.support_set
    rows = [len(texts) + 1 for texts in UNEVEN.values()]  # each label's name is a row too
    log_shares = [math.log(n / sum(rows)) for n in rows]
    assert fitted["none"].head_weight == pytest.approx(fitted["logit_adjustment"].head_weight)
    expected = [b - 0.5 * s for b, s in zip(fitted["none"].head_bias, log_shares)]
    assert list(fitted["logit_adjustment"].head_bias) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("balance", ["logit_adjustment", "reweighting", "none"])
def test_with_even_counts_every_balance_predicts_the_same(balance):
    nlp, plain = tiny_nlp(label_balance=balance), tiny_nlp(label_balance="none")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    plain.get_pipe("few_shot_textcat").adapt(SUPPORT)
    for a, b in zip(cats(nlp), cats(plain)):
        assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("balance", ["logit_adjustment", "reweighting"])
def test_adding_a_label_with_one_example_in_parts_equals_adapting_once(balance):
    parts = tiny_nlp(label_balance=balance)
    fs = parts.get_pipe("few_shot_textcat")
    fs.adapt({"card_lost": UNEVEN["card_lost"], "weather": UNEVEN["weather"]})
    fs.adapt({"refund": UNEVEN["refund"]})
    once = tiny_nlp(label_balance=balance)
    once.get_pipe("few_shot_textcat").adapt(
        {label: UNEVEN[label] for label in ("card_lost", "weather", "refund")}
    )
    for a, b in zip(cats(parts), cats(once)):
        assert a == pytest.approx(b, abs=1e-5)


def test_the_balance_is_saved_and_loaded(tmp_path):
    nlp = tiny_nlp(label_balance="reweighting", logit_adjustment_tau=0.3)
    nlp.get_pipe("few_shot_textcat").adapt(UNEVEN)
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    fs = loaded.get_pipe("few_shot_textcat")
    assert (fs.cfg["label_balance"], fs.cfg["logit_adjustment_tau"]) == ("reweighting", 0.3)
    for a, b in zip(cats(nlp), cats(loaded)):
        assert a == pytest.approx(b, abs=1e-6)


def test_a_pipeline_saved_before_the_balance_settings_loads_as_it_was_adapted(tmp_path):
    """Its head was fitted without balance: it loads with label_balance
    'none', predicts as before and adapts as it did."""
    nlp = tiny_nlp(label_balance="none")
    nlp.get_pipe("few_shot_textcat").adapt(UNEVEN)
    nlp.to_disk(tmp_path)
    cfg_path = tmp_path / "few_shot_textcat" / "cfg"
    cfg = srsly.read_json(cfg_path)
    del cfg["label_balance"], cfg["logit_adjustment_tau"]
    srsly.write_json(cfg_path, cfg)
    config = (tmp_path / "config.cfg").read_text()
    lines = [
        line for line in config.splitlines() if not line.startswith(("label_balance", "logit_"))
    ]
    (tmp_path / "config.cfg").write_text("\n".join(lines) + "\n")
    loaded = spacy.load(tmp_path)
    assert loaded.get_pipe("few_shot_textcat").cfg["label_balance"] == "none"
    for a, b in zip(cats(nlp), cats(loaded)):
        assert a == pytest.approx(b, abs=1e-6)
    loaded.get_pipe("few_shot_textcat").adapt({"refund": ["refund please"]})
    nlp.get_pipe("few_shot_textcat").adapt({"refund": ["refund please"]})
    for a, b in zip(cats(nlp), cats(loaded)):
        assert a == pytest.approx(b, abs=1e-6)
    # a balance given to spacy.load is taken, though the saved config lacks it
    overrides = {"label_balance": "reweighting", "logit_adjustment_tau": 0.5}
    given = spacy.load(tmp_path, config={"components": {"few_shot_textcat": overrides}})
    fs = given.get_pipe("few_shot_textcat")
    assert (fs.cfg["label_balance"], fs.cfg["logit_adjustment_tau"]) == ("reweighting", 0.5)


def test_the_in_scope_threshold_gives_every_label_the_same_weight():
    """The held-out scores of a label with 30 examples and of one with 3: the
    threshold is their quantile with each label weighing the same (the
    component's setting), or the plain one with label_balance 'none'."""
    texts = synthetic_texts(2, 30, seed=0)
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=0.2)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({"class0": texts["class0"], "class1": texts["class1"][:3]})
    values, labels = fs.adaptation.held_out_in_scope_scores
    assert sorted(labels.tolist()) == [0] * 30 + [1] * 3
    weights = LabelBalance("logit_adjustment").label_weights(labels, 2)
    assert weights[labels == 1].sum().item() == pytest.approx(weights[labels == 0].sum().item())
    embeddings = fs.embedder(texts["class1"][3:] + texts["class0"][:5])
    scores = fs.adaptation.in_scope_scores(embeddings)
    balanced = scores >= weighted_quantile(values, 0.2, weights).to(scores.dtype)
    assert torch.equal(fs.adaptation.decide(embeddings, fs.cfg)[1], balanced)
    plain = fs.adaptation.in_scope(embeddings, 0.2, balance=LabelBalance("none"))
    assert torch.equal(plain, scores >= torch.quantile(values, 0.2).to(scores.dtype))


def test_deep_adaptations_loss_weighs_each_labels_queries_the_same():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(14, 6, generator=generator)
    # support: one row of each label; queries: 10 of label 0, 2 of label 1
    labels = torch.tensor([0, 1] + [0] * 10 + [1] * 2)
    balanced = episode_loss(embeddings, labels, 2, 2, LabelBalance("logit_adjustment"))
    rows = torch.nn.functional.cross_entropy(
        20.0
        * torch.nn.functional.normalize(embeddings[2:], dim=-1)
        @ torch.nn.functional.normalize(embeddings[:2], dim=-1).T,
        labels[2:],
        reduction="none",
    )
    expected = (rows[:10].mean() + rows[10:].mean()) / 2
    assert balanced.item() == pytest.approx(expected.item(), rel=1e-5)
    assert episode_loss(embeddings, labels, 2, 2).item() == pytest.approx(
        rows.mean().item(), rel=1e-5
    )
