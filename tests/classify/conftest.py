import pytest

from ..util import SUPPORT, tiny_nlp


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """An adapted tiny pipeline, saved."""
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    path = tmp_path_factory.mktemp("classify") / "pipeline"
    nlp.to_disk(path)
    return str(path)
