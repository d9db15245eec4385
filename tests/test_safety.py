import pathlib
import pickle

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
