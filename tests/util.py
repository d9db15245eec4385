"""Tiny models and data for the tests."""

import random
from typing import Dict, List

import spacy
from spacy.language import Language
from thinc.api import Config

TOK2VEC_MODEL = """
[model]
@architectures = "spacy_metalearn.FewShotClassifier.v1"

[model.encoder]
@architectures = "spacy_metalearn.DocEncoder.v1"
projection_width = null

[model.encoder.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 32
depth = 1
embed_size = 1000
window_size = 1
maxout_pieces = 2
subword_features = true

[model.head]
@architectures = "spacy_metalearn.PrototypeHead.v2"
metric = "{metric}"
"""


def tok2vec_model(metric: str = "cosine") -> Dict:
    return Config().from_str(TOK2VEC_MODEL.format(metric=metric))["model"]


def default_pipeline(**config) -> Language:
    """A blank English pipeline with a few_shot_textcat on its default encoder
    (all-MiniLM-L6-v2, from the installed package: no network)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("few_shot_textcat", config=config)
    nlp.initialize()
    return nlp


def encoder_nlp(encoder: Dict, **config) -> Language:
    """A blank English pipeline, initialized, with a few_shot_textcat on
    `encoder` (an encoder architecture's config) and a cosine head."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_metalearn.FewShotClassifier.v1",
        "encoder": encoder,
        "head": {"@architectures": "spacy_metalearn.PrototypeHead.v2", "metric": "cosine"},
    }
    nlp.add_pipe("few_shot_textcat", config={"model": model, **config})
    nlp.initialize()
    return nlp


def tiny_bert_nlp(tiny_bert: str, **config) -> Language:
    """A blank English pipeline with a few_shot_textcat on the tiny BERT of the
    `tiny_bert` fixture (a folder)."""
    encoder = {
        "@architectures": "spacy_metalearn.DocEncoder.v1",
        "projection_width": None,
        "tok2vec": {"@architectures": "spacy_metalearn.TransformerEncoder.v1", "name": tiny_bert},
    }
    return encoder_nlp(encoder, **config)


def tiny_nlp(seed: int = 0, **config) -> Language:
    """A blank English pipeline with a few_shot_textcat on a small tok2vec."""
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    config.setdefault("model", tok2vec_model())
    nlp.add_pipe("few_shot_textcat", config=config)
    nlp.initialize()
    return nlp


SUPPORT = {
    "card_lost": ["I lost my card", "my card was stolen", "card missing since yesterday"],
    "refund": ["where is my refund", "refund still not here", "I want my money back"],
    "weather": ["will it rain today", "sunny weather tomorrow", "how cold is it outside"],
}


def synthetic_texts(
    n_classes: int, per_class: int, seed: int, first_class: int = 0
) -> Dict[str, List[str]]:
    """Texts whose class shows only in two topic words among six noise words
    shared by all classes. Topic and noise words differ in their prefix, so a
    model that learns to ignore noise words (by their subword features)
    separates classes it has never seen: a skill that transfers."""
    rng = random.Random(seed)
    noise = [f"noise{i}" for i in range(40)]
    data = {}
    for c in range(first_class, first_class + n_classes):
        topic = [f"topic{c}x{j}" for j in range(5)]
        data[f"class{c}"] = [
            " ".join(rng.sample(rng.sample(topic, 2) + rng.sample(noise, 6), 8))
            for _ in range(per_class)
        ]
    return data


def support_docs(nlp: Language) -> List:
    """SUPPORT as docs with exclusive cats, as spaCy's textcat keeps its data
    (write them with DocBin(docs=...).to_disk)."""
    docs = []
    for label, texts in SUPPORT.items():
        for text in texts:
            doc = nlp.make_doc(text)
            doc.cats = {other: float(other == label) for other in SUPPORT}
            docs.append(doc)
    return docs
