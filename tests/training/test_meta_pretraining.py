import math
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from thinc.api import Config

from spacy_metalearn.training.scoring import EPISODE_ACC

from ..util import TOK2VEC_MODEL, synthetic_texts

CONFIGS = Path(__file__).parent.parent.parent / "configs"


def write_corpus(path: Path, data) -> Path:
    nlp = spacy.blank("en")
    docs = []
    for label, texts in data.items():
        for text in texts:
            doc = nlp.make_doc(text)
            doc.cats = {label: 1.0}
            docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


LEARNER_CONFIGS = ["protonet", "matching", "maml", "fomaml", "proto_maml", "reptile"]


def tok2vec_config(max_steps: int, learner: str = "protonet") -> Config:
    """configs/<learner>.cfg with a tiny tok2vec encoder and a short schedule."""
    config = Config().from_disk(CONFIGS / f"{learner}.cfg", interpolate=False)
    component = config["components"]["few_shot_textcat"]
    component["model"] = Config().from_str(TOK2VEC_MODEL.format(metric="cosine"))["model"]
    component["scorer"].update({"n_way": 5, "k_shot": 2, "n_query": 4, "n_episodes": 100})
    config["training"].update({"max_steps": max_steps, "eval_frequency": max_steps, "dropout": 0.0})
    config["training"]["optimizer"]["learn_rate"] = 0.01
    config["training"]["batcher"].update(
        {"n_way": 5, "k_shot": 2, "n_query": 4, "group_separator": None}
    )
    component["scorer"]["group_separator"] = None
    return config


def test_learner_configs_differ_only_in_the_learner():
    def without_learner(name):
        config = Config().from_disk(CONFIGS / f"{name}.cfg", interpolate=False)
        learner = config["components"]["few_shot_textcat"].pop("learner")
        return config, learner

    base, _ = without_learner("protonet")
    learners = set()
    for name in LEARNER_CONFIGS:
        config, learner = without_learner(name)
        assert config == base, name
        learners.add(str(sorted(learner.items())))
    assert len(learners) == len(LEARNER_CONFIGS)


@pytest.mark.parametrize("learner", LEARNER_CONFIGS)
def test_meta_pretraining_improves_held_out_classes(tmp_path, learner):
    """After a few dozen episodes through `spacy train`, episode accuracy on
    classes never seen in training rises above the untrained model's."""
    train_path = write_corpus(tmp_path / "train.spacy", synthetic_texts(10, 12, seed=0))
    dev_path = write_corpus(
        tmp_path / "dev.spacy", synthetic_texts(10, 12, seed=1, first_class=100)
    )
    before, after = held_out_accuracy_before_and_after(
        tmp_path, tok2vec_config(max_steps=60, learner=learner), train_path, dev_path
    )
    assert after > before + 0.1, (before, after)
    assert (tmp_path / "out" / "model-best").exists()


def held_out_accuracy_before_and_after(tmp_path, config, train_path, dev_path):
    """Episode accuracy on the dev corpus of the pipeline `config` builds,
    untrained and after `spacy train` (model-last, in tmp_path / "out")."""
    from spacy.cli.train import train
    from spacy.training.initialize import init_nlp

    config_path = tmp_path / "config.cfg"
    config.to_disk(config_path)
    overrides = {"paths.train": str(train_path), "paths.dev": str(dev_path)}
    with pytest.warns(UserWarning, match="W001"):
        untrained = init_nlp(
            spacy.util.load_config(config_path, overrides=overrides, interpolate=True)
        )
        dev = list(spacy.training.Corpus(dev_path)(untrained))
        before = untrained.evaluate(dev)[EPISODE_ACC]
    with pytest.warns(UserWarning, match="W001"):
        train(config_path, tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-last")
    with pytest.warns(UserWarning, match="W001"):
        after = trained.evaluate(dev)[EPISODE_ACC]
    return before, after


def shipped_config_overrides(tmp_path, *, n_classes: int, steps: int, n_way: int, n_query: int):
    """Overrides that run configs/<learner>.cfg as shipped on a tiny corpus: a
    few small episodes and a two-episode dev evaluation."""
    # labels in one group ("synthetic/..."), as the shipped config draws
    # each episode's classes from one dataset or domain
    texts = synthetic_texts(n_classes, n_classes, seed=0)
    data = {f"synthetic/{label}": examples for label, examples in texts.items()}
    train_path = write_corpus(tmp_path / "train.spacy", data)
    return {
        "paths.train": str(train_path),
        "paths.dev": str(train_path),
        "training.max_steps": steps,
        "training.eval_frequency": steps,
        "training.batcher.n_way": n_way,
        "training.batcher.k_shot": 1,
        "training.batcher.n_query": n_query,
        "training.optimizer.learn_rate": 0.001,
        "components.few_shot_textcat.scorer.n_way": 2,
        "components.few_shot_textcat.scorer.k_shot": 1,
        "components.few_shot_textcat.scorer.n_query": 1,
        "components.few_shot_textcat.scorer.n_episodes": 2,
    }


def test_shipped_config_trains_the_default_transformer(tmp_path):
    """configs/protonet.cfg as shipped (all-MiniLM-L6-v2) runs through spacy train:
    two tiny episodes on CPU change the transformer's weights."""
    from spacy.cli.train import train

    overrides = shipped_config_overrides(tmp_path, n_classes=3, steps=2, n_way=2, n_query=1)
    with pytest.warns(UserWarning, match="W001"):
        train(CONFIGS / "protonet.cfg", tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-last")
    untrained = spacy.blank("en")
    untrained.add_pipe("few_shot_textcat")
    untrained.initialize()
    text = "my card was stolen"
    a = (
        trained.get_pipe("few_shot_textcat")
        .model.get_ref("encoder")
        .predict([trained.make_doc(text)])
    )
    b = (
        untrained.get_pipe("few_shot_textcat")
        .model.get_ref("encoder")
        .predict([untrained.make_doc(text)])
    )
    assert a.shape == b.shape == (1, 384)
    assert abs(a - b).max() > 1e-4


def test_same_seed_same_meta_pretraining_losses(tmp_path):
    from spacy.cli.train import train

    train_path = write_corpus(tmp_path / "train.spacy", synthetic_texts(6, 8, seed=0))
    dev_path = write_corpus(tmp_path / "dev.spacy", synthetic_texts(6, 8, seed=1, first_class=50))
    config_path = tmp_path / "config.cfg"
    tok2vec_config(max_steps=10).to_disk(config_path)
    overrides = {"paths.train": str(train_path), "paths.dev": str(dev_path)}
    performances = []
    for run in ("a", "b"):
        with pytest.warns(UserWarning, match="W001"):
            train(config_path, tmp_path / run, overrides=overrides)
        performances.append(spacy.load(tmp_path / run / "model-last").meta["performance"])
    assert performances[0]["few_shot_textcat_loss"] > 0
    assert performances[0] == performances[1]


@pytest.mark.parametrize("learner", LEARNER_CONFIGS)
def test_shipped_configs_pass_debug_config(tmp_path, learner):
    from spacy.cli.debug_config import debug_config

    corpus = write_corpus(tmp_path / "c.spacy", synthetic_texts(2, 2, seed=0))
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus)}
    debug_config(CONFIGS / f"{learner}.cfg", overrides=overrides)  # exits on an error


def multi_label_cats(model_bytes: bytes, support, queries, log_scale=None):
    from ..util import tiny_nlp

    nlp = tiny_nlp(exclusive_classes=False)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.model.from_bytes(model_bytes)
    if log_scale is not None:
        fs.model.get_ref("head").set_param("log_scale", fs.model.ops.asarray1f([log_scale]))
    fs.adapt(support)
    return [doc.cats for doc in nlp.pipe(queries)]


def test_multi_label_threshold_after_meta_pretraining(tmp_path):
    """After meta-pretraining has moved the temperature, a multi-label score
    of 0.5 still separates a doc's own label from the others on classes never
    trained on, and the scores do not depend on the learned temperature: the
    calibration is fitted on the support set at adapt()."""
    from spacy.cli.train import train

    train_path = write_corpus(tmp_path / "train.spacy", synthetic_texts(10, 12, seed=0))
    config_path = tmp_path / "config.cfg"
    tok2vec_config(max_steps=40).to_disk(config_path)
    overrides = {"paths.train": str(train_path), "paths.dev": str(train_path)}
    with pytest.warns(UserWarning, match="W001"):
        train(config_path, tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-last").get_pipe("few_shot_textcat")
    log_scale = float(trained.model.get_ref("head").get_param("log_scale")[0])
    assert abs(log_scale - math.log(10.0)) > 0.01  # training moved the temperature
    held_out = synthetic_texts(4, 12, seed=5, first_class=200)
    support = {label: texts[:5] for label, texts in held_out.items()}
    queries = [(label, text) for label, texts in held_out.items() for text in texts[5:]]
    model_bytes = trained.model.to_bytes()
    cats = multi_label_cats(model_bytes, support, [text for _, text in queries])
    own = [c[label] > 0.5 for (label, _), c in zip(queries, cats)]
    others = [c[o] < 0.5 for (label, _), c in zip(queries, cats) for o in c if o != label]
    assert sum(own) / len(own) > 0.8 and sum(others) / len(others) > 0.8, (own, others)
    rescaled = multi_label_cats(model_bytes, support, [t for _, t in queries], log_scale + 1.5)
    for a, b in zip(cats, rescaled):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-5)
