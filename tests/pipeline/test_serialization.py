import json
import subprocess
import sys

import numpy
import pytest
import spacy
import srsly

from ..util import SUPPORT, tiny_nlp

QUERIES = ["someone stole my card", "my refund never arrived", "is it raining", ""]


def cats_of(nlp):
    return [doc.cats for doc in nlp.pipe(QUERIES)]


def assert_same_cats(expected, got):
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
        assert a.keys() == b.keys()
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def tamper_support(pipeline_dir, tamper):
    """Apply `tamper` to the stored support set (arrays made writable first)."""
    path = pipeline_dir / "few_shot_textcat" / "support"
    msg = srsly.msgpack_loads(path.read_bytes())
    for key, value in msg.items():
        if isinstance(value, numpy.ndarray):
            msg[key] = value.copy()
    tamper(msg)
    path.write_bytes(srsly.msgpack_dumps(msg))


@pytest.fixture
def adapted():
    nlp = tiny_nlp(unknown_label="oos", threshold=0.4)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    return nlp


def test_to_disk_from_disk_round_trip(adapted, tmp_path):
    adapted.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    fs = loaded.get_pipe("few_shot_textcat")
    assert fs.labels == tuple(SUPPORT)
    assert fs.support_counts == {label: 3 for label in SUPPORT}
    assert fs.cfg == adapted.get_pipe("few_shot_textcat").cfg
    assert_same_cats(cats_of(adapted), cats_of(loaded))


def test_to_bytes_from_bytes_round_trip(adapted):
    data = adapted.to_bytes()
    fresh = tiny_nlp(seed=1, unknown_label="oos", threshold=0.4)
    fresh.from_bytes(data)
    assert_same_cats(cats_of(adapted), cats_of(fresh))


def test_component_bytes_round_trip(adapted):
    fs = adapted.get_pipe("few_shot_textcat")
    other = tiny_nlp(seed=2, unknown_label="oos", threshold=0.4)
    other.get_pipe("few_shot_textcat").from_bytes(fs.to_bytes())
    assert_same_cats(cats_of(adapted), cats_of(other))


def test_saved_files_are_plain_formats(adapted, tmp_path):
    adapted.to_disk(tmp_path)
    folder = tmp_path / "few_shot_textcat"
    assert sorted(p.name for p in folder.iterdir()) == ["cfg", "model", "support"]
    assert srsly.read_json(folder / "cfg")["unknown_label"] == "oos"
    stored = srsly.msgpack_loads((folder / "support").read_bytes())
    assert stored["labels"] == list(SUPPORT)
    # nine examples, then the three labels' names
    assert stored["label_ids"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2]
    assert stored["is_description"].tolist() == [False] * 9 + [True] * 3
    assert stored["embeddings"].dtype == numpy.float32


@pytest.mark.parametrize("file", ["support", "model", "cfg"])
def test_missing_file_names_it(adapted, tmp_path, file):
    adapted.to_disk(tmp_path)
    (tmp_path / "few_shot_textcat" / file).unlink()
    with pytest.raises(ValueError, match=rf"\[E012\].*'{file}' is missing"):
        spacy.load(tmp_path)


@pytest.mark.parametrize("file", ["support", "model", "cfg"])
def test_truncated_file_names_it(adapted, tmp_path, file):
    adapted.to_disk(tmp_path)
    path = tmp_path / "few_shot_textcat" / file
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match=rf"\[E013\].*'{file}' is damaged"):
        spacy.load(tmp_path)


@pytest.mark.parametrize(
    "tamper,problem",
    [
        (lambda m: m["embeddings"].__setitem__((0, 0), numpy.nan), "NaN or infinite"),
        (lambda m: m["embeddings"].__setitem__((1, 2), numpy.inf), "NaN or infinite"),
        (lambda m: m.__setitem__("label_ids", m["label_ids"][:8]), "12 embeddings but 8 label ids"),
        (lambda m: m["label_ids"].__setitem__(0, 7), r"label ids must be in \[0, 3\)"),
        (lambda m: m["label_ids"].__setitem__(slice(None), 0), "at least one example"),
        (lambda m: m.__setitem__("labels", ["a", "a", "b"]), "not unique"),
        (lambda m: m.__setitem__("labels", ["a", "", "b"]), "non-empty strings"),
        (lambda m: m.__setitem__("embeddings", m["embeddings"].astype("float64")), "float32"),
        (lambda m: m.__setitem__("format", 1), "unknown format"),
        (lambda m: m.__setitem__("calibration", [1.0, float("nan")]), "two finite numbers"),
        (lambda m: m.__setitem__("is_description", m["is_description"][:5]), "5 description marks"),
        (lambda m: m["label_ids"].__setitem__(10, 0), "more than one description"),
        (lambda m: m.pop("is_description"), "description marks are missing"),
    ],
)
def test_tampered_support_is_refused(adapted, tmp_path, tamper, problem):
    adapted.to_disk(tmp_path)
    tamper_support(tmp_path, tamper)
    with pytest.raises(ValueError, match=rf"\[E013\].*\[E014\].*{problem}"):
        spacy.load(tmp_path)


def test_failed_load_leaves_component_unchanged(adapted, tmp_path):
    adapted.to_disk(tmp_path)
    before = cats_of(adapted)
    fs = adapted.get_pipe("few_shot_textcat")
    (tmp_path / "few_shot_textcat" / "support").write_bytes(b"\x93garbage")
    with pytest.raises(ValueError, match=r"\[E013\]"):
        fs.from_disk(tmp_path / "few_shot_textcat")
    assert fs.labels == tuple(SUPPORT)
    assert_same_cats(before, cats_of(adapted))


def all_params(model):
    return [
        layer.get_param(name).copy()
        for layer in model.walk()
        for name in layer.param_names
        if layer.has_param(name)
    ]


def break_last_layer(model_bytes: bytes) -> bytes:
    """The model's bytes with a dimension of its last layer changed: thinc sets
    the earlier layers' parameters (the head's among them) before it refuses."""
    msg = srsly.msgpack_loads(model_bytes)
    for node in reversed(msg["nodes"]):
        dims = {name: value for name, value in node["dims"].items() if value is not None}
        if dims:
            name = next(iter(dims))
            node["dims"][name] = dims[name] + 1
            break
    return srsly.msgpack_dumps(msg)


@pytest.mark.parametrize("via", ["disk", "bytes"])
def test_failed_model_load_leaves_component_unchanged(via, tmp_path):
    """A model file that fails half-way (the head set, then a layer refused)
    leaves the live component's weights and cats as they were."""
    source = tiny_nlp(seed=3)
    source.get_pipe("few_shot_textcat").adapt(SUPPORT)
    target = tiny_nlp(seed=0)
    fs = target.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    before = cats_of(target)
    weights = all_params(fs.model)
    source_fs = source.get_pipe("few_shot_textcat")
    if via == "disk":
        source_fs.to_disk(tmp_path)
        (tmp_path / "model").write_bytes(break_last_layer((tmp_path / "model").read_bytes()))
        load = lambda: fs.from_disk(tmp_path)  # noqa: E731
    else:
        msg = srsly.msgpack_loads(source_fs.to_bytes())
        msg["model"] = break_last_layer(msg["model"])
        data = srsly.msgpack_dumps(msg)
        load = lambda: fs.from_bytes(data)  # noqa: E731
    with pytest.raises(ValueError, match=r"\[E013\].*'model'"):
        load()
    after = all_params(fs.model)
    assert len(weights) == len(after) > 0
    assert all(numpy.array_equal(a, b) for a, b in zip(weights, after))
    assert_same_cats(before, cats_of(target))


def test_spacy_package_installs_and_predicts_the_same(adapted, tmp_path):
    pipeline_dir, packages_dir, site = tmp_path / "pipe", tmp_path / "packages", tmp_path / "site"
    adapted.meta["name"] = "fewshot_test"
    adapted.meta["version"] = "0.0.1"
    adapted.to_disk(pipeline_dir)
    packages_dir.mkdir()
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(pipeline_dir), str(packages_dir),
         "--build", "none"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    source = packages_dir / "en_fewshot_test-0.0.1"
    assert (source / "setup.py").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(source)],
        check=True,
    )  # fmt: skip
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load('en_fewshot_test')\n"
        "assert nlp.get_pipe('few_shot_textcat').labels\n"
        "print(json.dumps([d.cats for d in nlp.pipe(json.loads(sys.argv[1]))]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(QUERIES)],
        env={"PYTHONPATH": str(site), "PATH": ""},
        check=True,
        capture_output=True,
        text=True,
    )
    assert_same_cats(cats_of(adapted), json.loads(out.stdout))


@pytest.mark.parametrize(
    "tamper,problem",
    [
        (lambda m: m["head_weight"].__setitem__((0, 0), numpy.nan), "NaN or infinite"),
        (lambda m: m.__setitem__("head_bias", m["head_bias"][:2]), "the fitted head has shapes"),
        (lambda m: m.__setitem__("head_bias", None), "needs both a weight and a bias"),
    ],
)
def test_tampered_fitted_head_is_refused(tmp_path, tamper, problem):
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=5)
    nlp.to_disk(tmp_path)
    tamper_support(tmp_path, tamper)
    with pytest.raises(ValueError, match=rf"\[E013\].*\[E014\].*{problem}"):
        spacy.load(tmp_path)


def tamper_component(fs, tamper_model=None, tamper_cfg=None) -> bytes:
    """The component's bytes with its model's msgpack or its cfg changed."""
    msg = srsly.msgpack_loads(fs.to_bytes(exclude=["vocab"]))
    if tamper_model is not None:
        model = srsly.msgpack_loads(msg["model"])
        tamper_model(model)
        msg["model"] = srsly.msgpack_dumps(model)
    if tamper_cfg is not None:
        cfg = srsly.json_loads(msg["cfg"])
        tamper_cfg(cfg)
        msg["cfg"] = srsly.json_dumps(cfg)
    return srsly.msgpack_dumps(msg)


def head_index(model_msg) -> int:
    return next(i for i, node in enumerate(model_msg["nodes"]) if node["name"] == "prototype_head")


def set_head_param(name, value):
    def tamper(model):
        model["params"][head_index(model)][name] = value

    return tamper


def nan_in_first_weights(model):
    for params in model["params"]:
        for name, value in params.items():
            if isinstance(value, numpy.ndarray) and value.size > 1:
                value = value.copy()
                value.flat[0] = numpy.nan
                params[name] = value
                return


def banana_metric(model):
    model["attrs"][head_index(model)]["metric"] = srsly.msgpack_dumps("banana")


@pytest.mark.parametrize(
    "tamper,problem",
    [
        (set_head_param("log_scale", numpy.array([numpy.nan], dtype="f")), "NaN or infinity"),
        (set_head_param("log_inner_lr", numpy.zeros((3,), dtype="f")), r"shape \(3,\)"),
        (nan_in_first_weights, "NaN or infinity"),
        (banana_metric, "banana"),
    ],
)
def test_bad_weights_are_refused_on_load(adapted, tamper, problem):
    fs = adapted.get_pipe("few_shot_textcat")
    data = tamper_component(fs, tamper_model=tamper)
    fresh = tiny_nlp(seed=1, unknown_label="oos", threshold=0.4).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[E013\].*'model'.*{problem}"):
        fresh.from_bytes(data, exclude=["vocab"])


@pytest.mark.parametrize(
    "setting,value,problem",
    [
        ("threshold", 5.0, r"\[E019\] threshold"),
        ("batch_size", 0, r"\[E019\] batch_size"),
        ("exclusive_classes", "no", r"\[E019\] exclusive_classes"),
        ("unknown_label", "refund", r"\[E010\]"),
        ("adapt_steps", True, r"\[E019\] adapt_steps"),
    ],
)
def test_bad_saved_settings_are_refused_on_load(adapted, setting, value, problem):
    fs = adapted.get_pipe("few_shot_textcat")
    data = tamper_component(fs, tamper_cfg=lambda cfg: cfg.__setitem__(setting, value))
    fresh = tiny_nlp(seed=1, unknown_label="oos", threshold=0.4).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[E013\].*'cfg'.*{problem}"):
        fresh.from_bytes(data, exclude=["vocab"])
    assert fresh.labels == ()


def test_a_failed_save_in_place_keeps_the_previous_files(adapted, tmp_path, monkeypatch):
    """Saving over a pipeline on a full disk: each file is written under a
    temporary name first, so the previous file stays whole."""
    from pathlib import Path

    adapted.to_disk(tmp_path)
    before = cats_of(adapted)
    fs = adapted.get_pipe("few_shot_textcat")
    fs.adapt({"weather": ["snow tomorrow"]})
    real_write = Path.write_bytes

    def disk_full(path, data):
        if path.name.endswith(".tmp"):
            real_write(path, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError):
        adapted.to_disk(tmp_path)
    monkeypatch.undo()
    assert not list((tmp_path / "few_shot_textcat").glob(".*.tmp"))
    assert_same_cats(before, cats_of(spacy.load(tmp_path)))


def test_settings_given_to_spacy_load_win_over_the_saved_ones(adapted, tmp_path):
    fs = adapted.get_pipe("few_shot_textcat")
    fs.set_adaptation(20, 5.0)  # changed after the config was written: saved in cfg
    adapted.to_disk(tmp_path)
    plain = spacy.load(tmp_path).get_pipe("few_shot_textcat")
    assert (plain.cfg["threshold"], plain.cfg["adapt_steps"], plain.cfg["adapt_learn_rate"]) == (
        0.4,
        20,
        5.0,
    )
    overrides = {"components": {"few_shot_textcat": {"threshold": 0.7, "unknown_label": "none"}}}
    loaded = spacy.load(tmp_path, config=overrides).get_pipe("few_shot_textcat")
    assert (loaded.cfg["threshold"], loaded.cfg["unknown_label"]) == (0.7, "none")
    assert loaded.cfg["adapt_steps"] == 20


@pytest.mark.parametrize("setting", ["in_scope_quantile", "use_label_names", "deep_adapt_layers"])
def test_a_saved_cfg_without_a_setting_is_refused(tmp_path, setting):
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path / "p")
    cfg_path = tmp_path / "p" / "few_shot_textcat" / "cfg"
    cfg = srsly.read_json(cfg_path)
    del cfg[setting]
    srsly.write_json(cfg_path, cfg)
    with pytest.raises(ValueError, match=r"E013.*cfg.*expected the settings"):
        spacy.load(tmp_path / "p")


def permute_labels(msg):
    msg["labels"] = msg["labels"][1:] + msg["labels"][:1]


def zero_first_row(msg):
    msg["embeddings"][0] = 0.0


def stretch_first_row(msg):
    msg["embeddings"][0] *= 2.0


def nudge_one_value(msg):
    msg["embeddings"][3, 1] += 0.25  # finite, a row no longer unit length is not the point


@pytest.mark.parametrize(
    "tamper,problem",
    [
        (permute_labels, "checksum does not match"),
        (lambda m: m.pop("checksum"), "checksum does not match"),
        (zero_first_row, "row 0 of the embeddings is all zeros"),
        (stretch_first_row, "row 0 of the embeddings has length 2, not 1"),
    ],
)
def test_damaged_support_that_looks_whole_is_refused(adapted, tmp_path, tamper, problem):
    """What adapt() cannot produce, and a label order or arrays that no
    longer match the checksum saved with them."""
    adapted.to_disk(tmp_path)
    tamper_support(tmp_path, tamper)
    with pytest.raises(ValueError, match=rf"\[E013\].*'support'.*\[E014\].*{problem}"):
        spacy.load(tmp_path)


def test_a_changed_value_fails_the_checksum(adapted):
    from spacy_metalearn.adaptation.support_set import SupportSet

    fs = adapted.get_pipe("few_shot_textcat")
    msg = srsly.msgpack_loads(fs.adaptation.support_set.to_bytes())
    msg["embeddings"] = msg["embeddings"].copy()
    msg["embeddings"][3, 1] = numpy.nextafter(msg["embeddings"][3, 1], numpy.float32(2))
    with pytest.raises(ValueError, match=r"\[E014\].*checksum"):
        SupportSet.from_bytes(srsly.msgpack_dumps(msg))


def test_squared_euclidean_rows_need_not_be_unit_length(tmp_path):
    from ..util import tok2vec_model

    nlp = tiny_nlp(model=tok2vec_model("squared_euclidean"))
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path)
    assert_same_cats(cats_of(nlp), cats_of(spacy.load(tmp_path)))
    tamper_support(tmp_path, zero_first_row)
    with pytest.raises(ValueError, match=r"\[E014\].*all zeros"):
        spacy.load(tmp_path)


def test_float64_weights_are_refused_on_load(adapted):
    """thinc would load them, and PyTorch would fail at predict time."""
    fs = adapted.get_pipe("few_shot_textcat")
    tamper = set_head_param("log_scale", numpy.array([2.3], dtype="float64"))
    data = tamper_component(fs, tamper_model=tamper)
    fresh = tiny_nlp(seed=1, unknown_label="oos", threshold=0.4).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E013\].*'model'.*float64, not float32"):
        fresh.from_bytes(data, exclude=["vocab"])
    assert fresh.labels == ()
