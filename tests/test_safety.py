import json
import pathlib
import pickle
import re
from pathlib import Path

import pytest
import spacy
import srsly

PACKAGE = pathlib.Path(__file__).parent.parent / "spacy_metalearn"


class Payload:
    """Unpickling this would create a file: the test checks it never does."""

    target = ""

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_package_never_unpickles():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert "import pickle" not in source and "pickle.load" not in source, path
        assert "allow_pickle=True" not in source, path
        for line in source.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, path


def test_model_file_with_a_pickle_payload_is_refused_unexecuted(tmp_path):
    """The transformer's weights are read with torch.load(weights_only=True): a
    tampered file that smuggles in code fails to load, and the code never runs."""
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    nlp.initialize()
    fs.adapt({"a": ["first example"], "b": ["second example"]})
    nlp.to_disk(tmp_path / "pipeline")
    model_path = tmp_path / "pipeline" / "few_shot_textcat" / "model"
    msg = srsly.msgpack_loads(model_path.read_bytes())
    marker = tmp_path / "payload_ran"
    Payload.target = str(marker)
    for shims in msg["shims"]:
        for i, shim_bytes in enumerate(shims):
            shim = srsly.msgpack_loads(shim_bytes)
            shim["state"] = pickle.dumps(Payload())
            shims[i] = srsly.msgpack_dumps(shim)
    model_path.write_bytes(srsly.msgpack_dumps(msg))
    with pytest.raises(ValueError, match=r"\[E013\].*'model' is damaged"):
        spacy.load(tmp_path / "pipeline")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", ".hidden", "a\\b"])
def test_component_names_cannot_leave_the_pipeline_folder(name):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[E030\]"):
        nlp.add_pipe("few_shot_textcat", name=name)


def test_saving_writes_only_inside_the_folder(tmp_path):
    from .util import SUPPORT, tiny_nlp

    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path / "pipeline")
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]
    assert sorted(p.name for p in (tmp_path / "pipeline" / "few_shot_textcat").iterdir()) == [
        "cfg",
        "model",
        "support",
    ]


@pytest.fixture(scope="module")
def transformer_component_bytes():
    """The bytes of an initialized few_shot_textcat with its own transformer."""
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    nlp.initialize()
    return fs.to_bytes(exclude=["vocab"])


def tamper_shims(component_bytes: bytes, key: str, tamper) -> bytes:
    """The component's bytes with `tamper` applied to the entry `key` of each
    saved transformer shim that has one (its return value replaces it)."""
    component = srsly.msgpack_loads(component_bytes)
    model = srsly.msgpack_loads(component["model"])
    for shims in model["shims"]:
        for i, shim_bytes in enumerate(shims):
            shim = srsly.msgpack_loads(shim_bytes)
            if isinstance(shim, dict) and key in shim:
                shim[key] = tamper(shim[key])
                shims[i] = srsly.msgpack_dumps(shim)
    component["model"] = srsly.msgpack_dumps(model)
    return srsly.msgpack_dumps(component)


def tamper_tokenizer(component_bytes: bytes, tamper) -> bytes:
    """Apply `tamper` to the tokenizer entries saved inside the transformer."""

    def edit(tokenizer):
        tamper(tokenizer)
        return tokenizer

    return tamper_shims(component_bytes, "tokenizer", edit)


def remote_code(marker: Path):
    code = f"open({str(marker)!r}, 'w').write('ran')\n"

    def tamper(tokenizer):
        config = json.loads(tokenizer["tokenizer_config.json"])
        config["auto_map"] = {"AutoTokenizer": ["evil_tokenizer.EvilTokenizer", None]}
        tokenizer["tokenizer_config.json"] = json.dumps(config).encode("utf8")
        tokenizer["evil_tokenizer.py"] = code.encode("utf8")
        tokenizer["kwargs"] = {**tokenizer.get("kwargs", {}), "trust_remote_code": True}

    return tamper


def escaping_file(target: Path):
    def tamper(tokenizer):
        tokenizer[str(target)] = b"written outside the pipeline"

    return tamper


@pytest.mark.parametrize(
    "payload,problem",
    [(remote_code, "'trust_remote_code' in the tokenizer's settings"), (escaping_file, "a path")],
)
def test_transformer_payload_that_could_run_code_is_refused(
    transformer_component_bytes, tmp_path, payload, problem
):
    """A saved transformer whose tokenizer files or settings could run code or
    write outside a temporary folder is refused before spacy-transformers
    sees it, and nothing runs or is written."""
    target = tmp_path / "outside.txt"
    data = tamper_tokenizer(transformer_component_bytes, payload(target))
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[E033\].*{re.escape(problem)}"):
        fs.from_bytes(data, exclude=["vocab"])
    assert not target.exists()


def test_payload_check_names_each_kind_of_entry():
    from spacy_metalearn.pipeline.payload import find_code_in_model

    def model_with(tokenizer, config=None):
        shim = srsly.msgpack_dumps({"config": config or {}, "tokenizer": tokenizer})
        return srsly.msgpack_dumps({"nodes": [], "params": [], "shims": [[shim]]})

    assert find_code_in_model(model_with({"vocab.txt": b"a\nb"})) is None
    assert "'../vocab.txt'" in find_code_in_model(model_with({"../vocab.txt": b""}))
    assert "code file 'x.py'" in find_code_in_model(model_with({"x.py": b""}))
    auto_map = json.dumps({"auto_map": {"AutoTokenizer": "x.Y"}}).encode()
    assert "'auto_map' in the tokenizer file" in find_code_in_model(
        model_with({"tokenizer_config.json": auto_map})
    )
    assert "its config" in find_code_in_model(model_with({}, {"auto_map": {"AutoModel": "x.Y"}}))


def tamper_transformer_state(component_bytes: bytes, tamper) -> bytes:
    """Apply `tamper` to the transformer's saved state dict."""
    import io

    import torch

    def edit(state_bytes):
        state = torch.load(io.BytesIO(state_bytes))
        tamper(state)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    return tamper_shims(component_bytes, "state", edit)


def nan_weight(state):
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")


def missing_weight(state):
    del state[next(k for k in state if k.endswith("weight"))]


@pytest.mark.parametrize(
    "tamper,problem", [(nan_weight, "NaN or infinity"), (missing_weight, "do not fit")]
)
def test_bad_transformer_weights_are_refused(transformer_component_bytes, tamper, problem):
    data = tamper_transformer_state(transformer_component_bytes, tamper)
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[E013\].*'model'.*{problem}"):
        fs.from_bytes(data, exclude=["vocab"])
