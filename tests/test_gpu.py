"""The GPU path: meta-pretraining through `spacy train --gpu-id 0`, mixed
precision, adapt() and predict() with the model on the GPU, and pipelines that
move between GPU and CPU through disk. Skipped where no GPU is available."""

import numpy
import pytest
import spacy
import torch
from thinc.api import require_cpu, require_gpu
from thinc.util import gpu_is_available

from spacy_metalearn.models.metric import MetricHead

from .learners.test_learners import LEARNERS, episode64, make
from .training.test_meta_pretraining import (
    CONFIGS,
    shipped_config_overrides,
    tok2vec_config,
    write_corpus,
)
from .util import SUPPORT, default_pipeline, synthetic_texts

pytestmark = pytest.mark.skipif(
    not (gpu_is_available() and torch.cuda.is_available()), reason="needs a CUDA GPU"
)

QUERIES = ["my card is gone", "refund please", "is it going to rain", "hello"]


@pytest.fixture
def on_gpu():
    """thinc's ops (and torch's default tensors) on GPU 0 for the test, CPU after."""
    require_gpu(0)
    try:
        yield
    finally:
        require_cpu()


def cats_of(nlp, texts):
    return numpy.array([[doc.cats[label] for label in sorted(doc.cats)] for doc in nlp.pipe(texts)])


def test_the_pipeline_runs_on_the_gpu(on_gpu):
    nlp = default_pipeline()
    component = nlp.get_pipe("few_shot_textcat")
    component.adapt(SUPPORT, steps=20)
    assert component.embedder(["my card"]).device.type == "cuda"
    assert component.adaptation.prototypes.device.type == "cuda"
    assert [max(doc.cats, key=doc.cats.get) for doc in nlp.pipe(QUERIES[:3])] == list(SUPPORT)


def test_adapted_on_gpu_loads_on_cpu_with_the_same_scores(tmp_path):
    """adapt() with inner-loop steps on the GPU, save, load on the CPU: the same
    labels and scores (float32 on both; the transformer's kernels differ)."""
    require_gpu(0)
    try:
        nlp = default_pipeline()
        nlp.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=20)
        on_gpu_cats = cats_of(nlp, QUERIES)
        nlp.to_disk(tmp_path / "adapted")
    finally:
        require_cpu()
    loaded = spacy.load(tmp_path / "adapted")
    assert loaded.get_pipe("few_shot_textcat").embedder(["x"]).device.type == "cpu"
    numpy.testing.assert_allclose(cats_of(loaded, QUERIES), on_gpu_cats, atol=1e-4)
    adapted_on_cpu = default_pipeline()
    adapted_on_cpu.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=20)
    numpy.testing.assert_allclose(cats_of(adapted_on_cpu, QUERIES), on_gpu_cats, atol=1e-3)


def test_adapted_on_cpu_loads_on_gpu(tmp_path, on_gpu):
    require_cpu()
    nlp = default_pipeline()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    on_cpu_cats = cats_of(nlp, QUERIES)
    nlp.to_disk(tmp_path / "adapted")
    require_gpu(0)
    loaded = spacy.load(tmp_path / "adapted")
    numpy.testing.assert_allclose(cats_of(loaded, QUERIES), on_cpu_cats, atol=1e-4)


@pytest.mark.parametrize("name", LEARNERS)
def test_learner_gradients_on_gpu_equal_the_cpus(name):
    """Every learner's loss and gradients (embeddings, temperature, step sizes)
    on CUDA tensors equal the CPU's, in float64."""
    support, labels, query, query_labels = episode64()
    results = []
    for device in ("cpu", "cuda"):
        tensors = [torch.tensor(a, device=device, requires_grad=True) for a in (support, query)]
        head = MetricHead(
            "cosine",
            log_scale=torch.tensor([0.7], dtype=torch.float64, device=device, requires_grad=True),
            log_inner_lr=torch.tensor(
                [0.3, -0.2], dtype=torch.float64, device=device, requires_grad=True
            ),
        )
        output = make(name)(
            tensors[0],
            torch.tensor(labels, device=device),
            tensors[1],
            torch.tensor(query_labels, device=device),
            head,
        )
        output.loss.backward()
        grads = [
            numpy.zeros(t.shape) if t.grad is None else t.grad.cpu().numpy()
            for t in (*tensors, head.log_scale, head.log_inner_lr)
        ]
        results.append((output.loss.item(), grads))
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = results
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-10)
    for cpu_grad, gpu_grad in zip(cpu_grads, gpu_grads):
        numpy.testing.assert_allclose(gpu_grad, cpu_grad, atol=1e-10)


def test_tiny_meta_pretraining_on_gpu_learns_and_loads_on_cpu(tmp_path):
    """spacy train with use_gpu=0 on a tiny tok2vec: held-out episode accuracy
    rises as on the CPU, and the result loads on the CPU with the same scores."""
    from spacy.cli.train import train

    from spacy_metalearn.training.scoring import EPISODE_ACC

    train_path = write_corpus(tmp_path / "train.spacy", synthetic_texts(10, 12, seed=0))
    dev_path = write_corpus(
        tmp_path / "dev.spacy", synthetic_texts(10, 12, seed=1, first_class=100)
    )
    config_path = tmp_path / "config.cfg"
    tok2vec_config(max_steps=60).to_disk(config_path)
    overrides = {"paths.train": str(train_path), "paths.dev": str(dev_path)}
    try:
        with pytest.warns(UserWarning, match="W001"):
            train(config_path, tmp_path / "out", overrides=overrides, use_gpu=0)
        trained = spacy.load(tmp_path / "out" / "model-last")
        assert type(trained.get_pipe("few_shot_textcat").model.ops).__name__ == "CupyOps"
        trained.get_pipe("few_shot_textcat").adapt(SUPPORT)
        on_gpu_cats = cats_of(trained, QUERIES)
    finally:
        require_cpu()
    assert trained.meta["performance"][EPISODE_ACC] > 0.6
    on_cpu = spacy.load(tmp_path / "out" / "model-last")
    on_cpu.get_pipe("few_shot_textcat").adapt(SUPPORT)
    numpy.testing.assert_allclose(cats_of(on_cpu, QUERIES), on_gpu_cats, atol=1e-4)


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_shipped_config_meta_pretrains_the_transformer_on_gpu(tmp_path, mixed_precision):
    """configs/protonet.cfg (all-MiniLM-L6-v2) through spacy train on GPU 0, in
    full and in mixed precision: the transformer's weights move, the loss is
    finite, and the trained pipeline adapts and predicts float32 scores."""
    from spacy.cli.train import train

    overrides = shipped_config_overrides(tmp_path, n_classes=4, steps=4, n_way=3, n_query=2)
    overrides["components.few_shot_textcat.model.encoder.tok2vec.mixed_precision"] = mixed_precision
    untrained = default_pipeline()
    before = untrained.get_pipe("few_shot_textcat").embedder(QUERIES).numpy()
    torch.cuda.reset_peak_memory_stats()
    try:
        with pytest.warns(UserWarning, match="W001"):
            train(CONFIGS / "protonet.cfg", tmp_path / "out", overrides=overrides, use_gpu=0)
        assert torch.cuda.max_memory_allocated() > 50_000_000  # the transformer went there
        trained = spacy.load(tmp_path / "out" / "model-last")
        component = trained.get_pipe("few_shot_textcat")
        component.adapt(SUPPORT, steps=10)
        scores = component.predict([trained.make_doc(text) for text in QUERIES]).scores
        assert scores.dtype == numpy.float32
        after = component.embedder(QUERIES).cpu().numpy()
    finally:
        require_cpu()
    assert numpy.isfinite(trained.meta["performance"]["few_shot_textcat_loss"])
    assert numpy.isfinite(after).all()
    assert abs(after - before).max() > 1e-4
