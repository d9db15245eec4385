"""A long text is read whole: the transformer's strided windows (128
wordpieces, stride 96) cover it, so its last words move its doc vector as its
first do; only a text over nlp.max_length is refused (by spaCy, E088)."""

import pytest
import torch

from ..util import tiny_bert_nlp


def test_the_end_of_a_long_text_moves_its_vector(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert)
    embed = nlp.get_pipe("few_shot_textcat").embedder
    body = " ".join(f"word{i % 50} filler text" for i in range(400))  # about 2,000 wordpieces
    vectors = embed([body + " my card was stolen", body + " where is my refund", body])
    assert len(nlp.make_doc(body)) > 1000
    # the last four words are under 1% of the text, and still change its vector
    assert not torch.allclose(vectors[0], vectors[1], atol=1e-6)
    assert not torch.allclose(vectors[0], vectors[2], atol=1e-6)


def test_a_text_over_max_length_is_spacys_error(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert)
    nlp.max_length = 100
    with pytest.raises(ValueError, match="E088"):
        nlp("x" * 101)
