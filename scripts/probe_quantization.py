"""Which matrix multiplications the int8 fast path leaves in float32: each
choice's ONNX Runtime session against the float32 one on BANKING77 *train*
texts (never the test split), its fidelity (mean cosine of the mean-pooled
outputs to float32's) and its speed (docs/s over the same length-sorted
batches of 32, the sessions timed in interleaved rounds, the ratio to float32
paired by round). Each is exported as the backend exports (`export_onnx`), from
the default pipeline's transformer, with the torch thread count given.

    python scripts/probe_quantization.py assets/few_shot_intent_detection/BANKING77 \
        --rounds 21
"""

import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy
import torch
import typer

from spacy_metalearn.data import read_labelled
from spacy_metalearn.evaluation import find_component, load_pipeline
from spacy_metalearn.models.encoder import find_transformer_shim
from spacy_metalearn.onnx_inference import export_onnx, float32_nodes

BATCH_SIZE = 32


def matmuls(layer: int, *parts: str) -> Callable:
    """Nodes of one layer: the MatMul nodes under each named part ("attention"
    also takes its fused Attention node and its output projection)."""

    def select(model) -> List[str]:
        names = []
        for node in model.graph.node:
            if "attention" in parts and node.name == f"Attention_{layer}":
                names.append(node.name)
            elif node.op_type == "MatMul" and any(
                f"/layer.{layer}/{part}/" in node.name for part in parts
            ):
                names.append(node.name)
        return names

    return select


CHOICES: Dict[str, Callable] = {
    "every layer in int8": lambda model: [],
    "layer 0 in float32": matmuls(0, "attention", "intermediate", "output"),
    "layer 0 attention and its output projection in float32": matmuls(0, "attention"),
    "layer 0 feed-forward in float32": matmuls(0, "intermediate", "output"),
    "layer 0 feed-forward output in float32 (shipped)": float32_nodes,
    "layer 5 feed-forward output in float32": matmuls(5, "output"),
}


def mean_pooled(hidden: numpy.ndarray, mask: numpy.ndarray) -> numpy.ndarray:
    mask = mask[..., None].astype(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def main(
    data: Path = typer.Argument(..., help="Folder with train/ (seq.in, label)"),
    n_texts: int = typer.Option(1000, help="Train texts, evenly spaced over the split"),
    rounds: int = typer.Option(21, min=1, help="Timed rounds (medians; ratios paired by round)"),
    threads: int = typer.Option(2, help="torch and ONNX Runtime threads"),
) -> None:
    import onnx
    import onnxruntime

    torch.set_num_threads(threads)
    component = find_component(load_pipeline("default"))
    shim = find_transformer_shim(component.model.get_ref("encoder"))
    transformer, tokenizer = shim._hfmodel.transformer, shim._hfmodel.tokenizer
    train = [text for text, _ in read_labelled(data / "train")]
    texts = sorted(train[:: max(1, len(train) // n_texts)][:n_texts], key=len)
    batches = []
    for start in range(0, len(texts), BATCH_SIZE):
        inputs = tokenizer(texts[start : start + BATCH_SIZE], padding=True, return_tensors="np")
        batches.append({name: values.astype(numpy.int64) for name, values in inputs.items()})
    models = {"float32": export_onnx(transformer, quantize=False)}
    for name, keep in CHOICES.items():
        models[name] = export_onnx(transformer, quantize=True, keep_float32=keep)
    sessions = {}
    for name, model in models.items():
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        sessions[name] = onnxruntime.InferenceSession(model, options)
    feeds = [
        {node.name: batch[node.name] for node in sessions["float32"].get_inputs()}
        for batch in batches
    ]

    def pooled(name: str) -> numpy.ndarray:
        outputs = [sessions[name].run(None, feed)[0] for feed in feeds]
        return numpy.concatenate(
            [mean_pooled(out, feed["attention_mask"]) for out, feed in zip(outputs, feeds)]
        )

    reference = pooled("float32")
    seconds: Dict[str, List[float]] = {name: [] for name in sessions}
    names = list(sessions)
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            for feed in feeds:
                sessions[name].run(None, feed)
            seconds[name].append(time.perf_counter() - start)
    print(f"{len(texts)} BANKING77 train texts, {threads} threads, {rounds} interleaved rounds")
    print("| int8 choice | float32 nodes | mean cosine to float32 | docs/s | over float32 |")
    print("|---|---|---|---|---|")
    for name in sessions:
        output = pooled(name)
        cosine = (output * reference).sum(1) / (
            numpy.linalg.norm(output, axis=1) * numpy.linalg.norm(reference, axis=1)
        )
        n_float32 = (
            len(CHOICES[name](onnx.load_from_string(models["float32"])))
            if name in CHOICES
            else "all"
        )
        ratio = statistics.median(f / s for f, s in zip(seconds["float32"], seconds[name]))
        rate = len(texts) / statistics.median(seconds[name])
        print(f"| {name} | {n_float32} | {cosine.mean():.4f} | {rate:.1f} | {ratio:.3f} |")


if __name__ == "__main__":
    typer.run(main)
