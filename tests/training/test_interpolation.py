import json

import numpy
import pytest
import spacy
from typer.testing import CliRunner

from spacy_metalearn.__main__ import app
from spacy_metalearn.evaluation import find_component
from spacy_metalearn.interpolation import (
    interpolate,
    model_weights,
    parse_grid,
    set_model_weights,
    start_pipeline,
)
from spacy_metalearn.meta_dev import meta_dev_accuracy, read_meta_dev

from ..util import synthetic_texts, tiny_bert_nlp
from ..util import tiny_nlp as tiny_pipeline


def tiny_nlp(seed: int = 0):
    """The tests' tiny pipeline, adapting by the prototypes alone (adapt_steps
    = 0), so that the meta-dev scores follow the weights interpolated and
    nothing else."""
    return tiny_pipeline(seed, adapt_steps=0)


def weights_of(nlp):
    return model_weights(find_component(nlp).model)


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        numpy.testing.assert_array_equal(a[key], b[key], err_msg=key)


def scaled(nlp, factor):
    """`nlp` with every weight multiplied by `factor` (0: a model whose docs
    all embed the same, so it cannot tell labels apart)."""
    weights = {key: value * factor for key, value in weights_of(nlp).items()}
    set_model_weights(find_component(nlp).model, weights)
    return nlp


def test_interpolation_is_linear_in_every_weight():
    start = {"w": numpy.array([0.0, 2.0], dtype="float32")}
    trained = {"w": numpy.array([4.0, -2.0], dtype="float32")}
    assert interpolate(start, trained, 0.0)["w"].tolist() == [0.0, 2.0]
    assert interpolate(start, trained, 1.0)["w"].tolist() == [4.0, -2.0]
    assert interpolate(start, trained, 0.25)["w"].tolist() == [1.0, 1.0]


def test_weights_round_trip_through_thinc_params_and_torch_modules(tiny_bert):
    source, target = tiny_bert_nlp(tiny_bert), tiny_bert_nlp(tiny_bert)
    scaled(source, 0.5)
    weights = weights_of(source)
    assert any(":shim" in key for key in weights)  # the transformer's tensors
    assert any(key.endswith(":log_scale") for key in weights)  # the head's params
    set_model_weights(find_component(target).model, weights)
    assert_same_weights(weights_of(target), weights)
    texts = ["lost my card", "refund please"]
    numpy.testing.assert_allclose(
        find_component(target).embedder(texts).numpy(),
        find_component(source).embedder(texts).numpy(),
        atol=1e-6,
    )


def test_the_start_is_the_trained_config_initialized_afresh(tiny_bert):
    fresh = tiny_bert_nlp(tiny_bert)
    trained = scaled(tiny_bert_nlp(tiny_bert), 0.9)
    assert_same_weights(weights_of(start_pipeline(trained)), weights_of(fresh))


@pytest.mark.parametrize(
    "text,expected", [("0,0.5,1", [0.0, 0.5, 1.0]), ("1, 0.3", [0.3, 1.0]), ("0.5,0.5", [0.5])]
)
def test_grid(text, expected):
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["1.5", "-0.1", "a,b", ""])
def test_grid_outside_zero_to_one_is_refused(text):
    with pytest.raises(ValueError, match=r"\[E019\] --grid"):
        parse_grid(text)


def write_jsonl(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}) + "\n" for lab, ts in data.items() for t in ts
        )
    )


@pytest.fixture
def meta_dev(tmp_path):
    """Two tasks of synthetic classes (three and four labels), each with a
    support set and test queries."""
    folder = tmp_path / "meta_dev"
    for name, n_classes, first in (("a", 3, 0), ("b", 4, 10)):
        data = synthetic_texts(n_classes, 30, seed=first, first_class=first)
        write_jsonl(folder / name / "support.jsonl", {k: v[:3] for k, v in data.items()})
        write_jsonl(folder / name / "test.jsonl", {k: v[3:] for k, v in data.items()})
    return folder


def test_meta_dev_accuracy_is_the_mean_over_tasks(meta_dev):
    tasks = read_meta_dev(meta_dev)
    assert [task.name for task in tasks] == ["a", "b"]
    assert [len(task.test) for task in tasks] == [81, 108]
    nlp = tiny_nlp()
    scores = meta_dev_accuracy(nlp, tasks)
    assert scores["accuracy"] == pytest.approx(numpy.mean(list(scores["tasks"].values())))
    assert scores["tasks"]["a"] > 100 / 3  # the synthetic classes are told apart
    # a model that embeds every doc the same cannot
    assert meta_dev_accuracy(scaled(nlp, 0.0), tasks)["tasks"]["a"] == pytest.approx(100 / 3)


def training_folder(tmp_path, best, last):
    folder = tmp_path / "training"
    folder.mkdir()
    best.to_disk(folder / "model-best")
    last.to_disk(folder / "model-last")
    return folder


def interpolate_args(tmp_path, training, meta_dev, start, *extra):
    return ["interpolate", str(training), str(meta_dev), str(tmp_path / "shipped"),
            "--start", str(start), "--scores", str(tmp_path / "scores.json"), *extra]  # fmt: skip


def test_training_that_hurts_is_not_shipped(tmp_path, meta_dev):
    """Both checkpoints lost what the start could do: alpha = 0 wins, the
    shipped weights are the start's, and the meta says so."""
    start = tiny_nlp()
    start.to_disk(tmp_path / "start")
    training = training_folder(tmp_path, scaled(tiny_nlp(), 0.0), scaled(tiny_nlp(), 0.0))
    result = CliRunner().invoke(
        app, interpolate_args(tmp_path, training, meta_dev, tmp_path / "start")
    )
    assert result.exit_code == 0, result.output
    assert "meta-pretraining did not help" in result.output
    shipped = spacy.load(tmp_path / "shipped")
    assert_same_weights(weights_of(shipped), weights_of(start))
    assert find_component(shipped).labels == ()
    interpolation = shipped.meta["spacy_metalearn"]["interpolation"]
    assert interpolation["chosen"]["alpha"] == 0.0
    assert interpolation["meta_pretraining_helped"] is False
    grid = interpolation["grid"]
    assert [(row["checkpoint"], row["alpha"]) for row in grid] == [
        (name, alpha)
        for name in ("model-best", "model-last")
        for alpha in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert grid[0]["accuracy"] == grid[5]["accuracy"]  # the start, scored once
    assert grid[4]["accuracy"] < grid[0]["accuracy"]
    assert json.loads((tmp_path / "scores.json").read_text()) == interpolation


def test_training_that_helps_is_shipped_interpolated(tmp_path, meta_dev):
    """From a start that cannot tell labels apart, any step towards the
    trained weights helps: the chosen alpha is above 0, the shipped weights
    are the interpolation at that alpha of the checkpoint chosen, and the
    choice is the grid's best."""
    scaled(tiny_nlp(), 0.0).to_disk(tmp_path / "start")
    best, last = tiny_nlp(seed=1), tiny_nlp(seed=2)
    training = training_folder(tmp_path, best, last)
    args = interpolate_args(tmp_path, training, meta_dev, tmp_path / "start", "--grid", "0.5,1")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    shipped = spacy.load(tmp_path / "shipped")
    interpolation = shipped.meta["spacy_metalearn"]["interpolation"]
    chosen = interpolation["chosen"]
    assert chosen["alpha"] > 0.0 and interpolation["meta_pretraining_helped"] is True
    assert chosen["accuracy"] == max(row["accuracy"] for row in interpolation["grid"])
    trained = {"model-best": best, "model-last": last}[chosen["checkpoint"]]
    expected = interpolate(
        weights_of(spacy.load(tmp_path / "start")), weights_of(trained), chosen["alpha"]
    )
    assert_same_weights(weights_of(shipped), expected)
    fs = find_component(shipped)
    fs.adapt({"card": ["lost my card"], "refund": ["where is my refund"]})
    assert set(shipped("my card").cats) == {"card", "refund"}


def test_bad_interpolation_inputs_write_nothing(tmp_path, meta_dev):
    start = tiny_nlp()
    start.to_disk(tmp_path / "start")
    training = training_folder(tmp_path, tiny_nlp(seed=1), tiny_nlp(seed=2))
    one_label = tmp_path / "one_label"
    write_jsonl(one_label / "t" / "support.jsonl", {"only": ["a text", "another"]})
    write_jsonl(one_label / "t" / "test.jsonl", {"only": ["a third"]})
    cases = [
        (["--grid", "0,2"], meta_dev, "[E019] --grid"),
        ([], tmp_path / "no_meta_dev", "[E047]"),
        ([], one_label, "[E051]"),
        ([], tmp_path / "start", "[E051]"),  # a pipeline folder is no meta-dev
    ]
    for extra, dev, code in cases:
        result = CliRunner().invoke(
            app, interpolate_args(tmp_path, training, dev, tmp_path / "start", *extra)
        )
        assert result.exit_code == 1 and code in result.output, (code, result.output)
        assert "Traceback" not in result.output
        assert not (tmp_path / "shipped").exists() and not (tmp_path / "scores.json").exists()


def test_a_start_of_other_weights_is_refused(tmp_path, meta_dev, tiny_bert):
    tiny_bert_nlp(tiny_bert).to_disk(tmp_path / "start")
    training = training_folder(tmp_path, tiny_nlp(seed=1), tiny_nlp(seed=2))
    result = CliRunner().invoke(
        app, interpolate_args(tmp_path, training, meta_dev, tmp_path / "start")
    )
    assert result.exit_code == 1 and "[E050]" in result.output
    assert not (tmp_path / "shipped").exists()


def test_the_paired_bootstrap_tells_a_gain_from_noise():
    from spacy_metalearn.meta_dev import paired_bootstrap

    start = {"a": [True] * 60 + [False] * 40, "b": [True] * 50 + [False] * 50}
    one_more = {"a": [True] * 61 + [False] * 39, "b": start["b"]}
    noise = paired_bootstrap(one_more, start)
    assert noise["gain"] == pytest.approx(0.5)  # 1 point on one task of two
    assert noise["low"] <= 0.0 <= noise["high"]
    many_more = {"a": [True] * 90 + [False] * 10, "b": [True] * 80 + [False] * 20}
    clear = paired_bootstrap(many_more, start)
    assert clear["gain"] == pytest.approx(30.0) and clear["low"] > 20.0
    assert paired_bootstrap(many_more, start) == clear  # seeded


@pytest.mark.parametrize("right_after_training,shipped_alpha", [(61, 0.0), (95, 1.0)])
def test_a_gain_within_the_meta_devs_noise_ships_alpha_0(
    monkeypatch, right_after_training, shipped_alpha
):
    """The meta-dev scores alpha 0 at 60 of 100 and every trained point at
    `right_after_training`: one more query right is noise (alpha 0 is
    shipped, and the best is kept in the result), 35 more is a gain."""
    from spacy_metalearn import interpolation

    def scores(nlp, tasks):
        weights = weights_of(nlp)
        right = 60 if all(numpy.array_equal(weights[k], START[k]) for k in START) else None
        right = right or right_after_training
        correct = [True] * right + [False] * (100 - right)
        return {"accuracy": float(right), "tasks": {"t": float(right)}, "correct": {"t": correct}}

    start, trained = tiny_nlp(seed=0), tiny_nlp(seed=1)
    START = weights_of(start)
    monkeypatch.setattr(interpolation, "meta_dev_accuracy", scores)
    result, weights = interpolation.choose_interpolation(
        {"model-last": trained}, start, [], [0.0, 1.0]
    )
    assert result["best"]["alpha"] == 1.0
    assert result["within_noise"] == (shipped_alpha == 0.0)
    assert result["chosen"]["alpha"] == shipped_alpha
    assert "correct" not in result["chosen"] and "correct" not in result["grid"][0]
    expected = START if shipped_alpha == 0.0 else weights_of(trained)
    assert_same_weights(weights, expected)
