"""New intents for an assistant that has many: meta-pretrain on the intents
you have, adapt to new ones from a few examples, beside the frozen encoder
adapted the same way.

For each ProtAugment split of BANKING77 (its classes cut into train, valid
and test classes, disjoint):

1. `python -m spacy_metalearn corpus` writes the train classes' utterances
   (meta-train) and the valid classes' (spacy train's dev episodes);
2. `spacy train CONFIG` meta-pretrains on them (episodes of up to --n-way of
   the train classes, --steps episodes);
3. `python -m spacy_metalearn interpolate` chooses the checkpoint and alpha
   on one all-label task of the valid classes (10 examples each as support,
   the rest as test), as the pipeline adapts;
4. `python -m spacy_metalearn evaluate` adapts all-label to the test classes
   from K examples each (K in --shots, drawn with the seed) and predicts the
   rest of their utterances, with the interpolated pipeline and with the
   frozen encoder, both with --adapt-steps head steps of --adapt-learn-rate.

The generalized case (the train classes as old labels beside the test classes
as new ones) is benchmarks/new_labels.py, which reads the pipelines this
leaves in WORK/NN/model-interpolated (--meta-models).

Prints and writes the gain (meta-pretrained minus frozen) of every split
and shot count, their mean and 95% confidence interval over the splits.
results.json is rewritten after every split, with the settings it ran with;
--resume keeps the splits it already holds (same settings) and runs the rest.

    python -m benchmarks.new_intents assets/protaugment_splits/BANKING77 metrics/new_intents
"""

import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import typer

Pairs = List[Tuple[str, str]]
# Student's t at 0.975 for 1..9 degrees of freedom (a 95% interval over splits)
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]
DEV_SHOTS = 10
# test utterances per valid class in the meta-dev task (keeps interpolate quick)
DEV_TEST_PER_CLASS = 40


def read_full(path: Path) -> Pairs:
    rows = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line]
    return [(row["sentence"], row["label"]) for row in rows]


def read_labels(path: Path) -> List[str]:
    return [line.strip() for line in path.read_text(encoding="utf8").splitlines() if line.strip()]


def by_label(pairs: Pairs) -> Dict[str, List[str]]:
    groups: Dict[str, List[str]] = {}
    for text, label in pairs:
        groups.setdefault(label, []).append(text)
    return groups


def split_shots(
    groups: Dict[str, List[str]], labels: Sequence[str], k: int, rng: random.Random
) -> Tuple[Pairs, Pairs]:
    """k utterances of each label as support, the rest as test."""
    support, test = [], []
    for label in labels:
        texts = list(groups[label])
        rng.shuffle(texts)
        support += [(text, label) for text in texts[:k]]
        test += [(text, label) for text in texts[k:]]
    return support, test


def write_jsonl(path: Path, pairs: Pairs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf8") as file:
        for text, label in pairs:
            file.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


def run(*command: str) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", *command], check=True)


def evaluate(model: str, support: Path, test: Path, output: Path, steps: int, rate: float) -> float:
    run("spacy_metalearn", "evaluate", model, str(support), str(test), "--steps", str(steps),
        "--learn-rate", str(rate), "--repeats", "1", "--output", str(output),
        "--force")  # fmt: skip
    return json.loads(output.read_text())["accuracy"]


def mean_ci(values: Sequence[float]) -> Tuple[float, float]:
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, float("nan")
    t = T_975[min(len(values), len(T_975) + 1) - 2]
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def main(
    data: Path = typer.Argument(..., help="ProtAugment BANKING77: full.jsonl and few_shot/NN/"),
    output: Path = typer.Argument(..., help="Folder for results.json, results.md"),
    splits: str = typer.Option("01,02,03,04,05"),
    shots: str = typer.Option("1,5,10"),
    config: Path = typer.Option(Path("configs/protonet.cfg")),
    steps: int = typer.Option(100, help="Meta-training episodes"),
    eval_frequency: int = typer.Option(50),
    n_way: int = typer.Option(25, help="Classes per training episode"),
    meta_train_layers: int = typer.Option(0, help="Train only the top L layers (0: all)"),
    learn_rate: float = typer.Option(2e-5, help="Meta-training's learning rate"),
    adapt_steps: int = typer.Option(100),
    adapt_learn_rate: float = typer.Option(30.0),
    grid: str = typer.Option("0,0.25,0.5,0.75,1"),
    seed: int = typer.Option(0),
    gpu_id: int = typer.Option(-1),
    work: Path = typer.Option(Path("training/new_intents")),
    resume: bool = typer.Option(
        False, help="Keep the splits OUTPUT/results.json holds (same settings); run the rest"
    ),
) -> None:
    pairs = read_full(data / "full.jsonl")
    groups = by_label(pairs)
    shot_counts = [int(k) for k in shots.split(",")]
    settings = {
        "config": config.as_posix(), "shots": shot_counts, "steps": steps,
        "eval_frequency": eval_frequency, "n_way": n_way,
        "meta_train_layers": meta_train_layers, "learn_rate": learn_rate,
        "adapt_steps": adapt_steps, "adapt_learn_rate": adapt_learn_rate, "grid": grid,
        "seed": seed,
    }  # fmt: skip
    rows = resumed_rows(output, settings) if resume else []
    done = {row["split"] for row in rows}
    for split in splits.split(","):
        if split in done:
            print(f"Split {split}: kept from {output / 'results.json'}", flush=True)
            continue
        folder = data / "few_shot" / split
        train, valid, test = (read_labels(folder / f"labels.{part}.txt")
                              for part in ("train", "valid", "test"))  # fmt: skip
        here = work / split
        rng = random.Random(seed)
        corpus = here / "corpus"
        write_jsonl(corpus / "train.jsonl", [(t, lab) for t, lab in pairs if lab in train])
        write_jsonl(corpus / "dev.jsonl", [(t, lab) for t, lab in pairs if lab in valid])
        for part in ("train", "dev"):
            run("spacy_metalearn", "corpus", str(corpus / f"{part}.jsonl"),
                str(corpus / f"{part}.spacy"), "--force")  # fmt: skip
        dev_support, dev_test = split_shots(groups, valid, DEV_SHOTS, rng)
        capped = by_label(dev_test)
        dev_test = [(t, lab) for lab in valid for t in capped[lab][:DEV_TEST_PER_CLASS]]
        write_jsonl(here / "meta_dev" / "valid" / "support.jsonl", dev_support)
        write_jsonl(here / "meta_dev" / "valid" / "test.jsonl", dev_test)
        train_command = [
            "spacy", "train", str(config), "--output", str(here / "training"),
            "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
            "--training.max_steps", str(steps), "--training.eval_frequency", str(eval_frequency),
            "--training.batcher.n_way", str(n_way), "--training.batcher.group_separator", "null",
            "--components.few_shot_textcat.scorer.group_separator", "null",
            "--components.few_shot_textcat.adapt_steps", str(adapt_steps),
            "--components.few_shot_textcat.adapt_learn_rate", str(adapt_learn_rate),
            "--training.optimizer.learn_rate", str(learn_rate), "--gpu-id", str(gpu_id),
        ]  # fmt: skip
        if meta_train_layers:
            train_command += ["--components.few_shot_textcat.meta_train_layers",
                              str(meta_train_layers)]  # fmt: skip
        run(*train_command)
        chosen = here / "model-interpolated"
        run("spacy_metalearn", "interpolate", str(here / "training"), str(here / "meta_dev"),
            str(chosen), "--grid", grid, "--scores", str(here / "interpolation.json"), "--force",
            "--gpu-id", str(gpu_id))  # fmt: skip
        interpolation = json.loads((here / "interpolation.json").read_text())
        for k in shot_counts:
            support, test_pairs = split_shots(groups, test, k, random.Random(seed + k))
            s_path = write_jsonl(here / f"test_{k}shot" / "support.jsonl", support)
            t_path = write_jsonl(here / f"test_{k}shot" / "test.jsonl", test_pairs)
            accuracy = {
                name: evaluate(model, s_path, t_path, here / f"test_{k}shot" / f"{name}.json",
                               adapt_steps, adapt_learn_rate)
                for name, model in (("meta", str(chosen)), ("frozen", "default"))
            }  # fmt: skip
            rows.append(
                {
                    "split": split,
                    "shots": k,
                    "meta": accuracy["meta"],
                    "frozen": accuracy["frozen"],
                    "gain": accuracy["meta"] - accuracy["frozen"],
                    "chosen": interpolation.get("chosen"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        write_results(rows, settings, output)  # after every split: a partial run keeps its rows


def resumed_rows(output: Path, settings: dict) -> List[dict]:
    """The rows of OUTPUT/results.json, when it ran with the same settings."""
    path = output / "results.json"
    if not path.exists():
        return []
    previous = json.loads(path.read_text())
    if previous.get("settings") != settings:
        raise typer.BadParameter(
            f"{path} ran with other settings ({previous.get('settings')}), not {settings}: "
            "rerun without --resume, or with another output folder",
            param_hint="--resume",
        )
    return previous["rows"]


def write_results(rows: List[dict], settings: dict, output: Path) -> None:
    """The mean gain and its 95% CI over the splits done so far, per shot
    count: printed, and written to results.json (with the settings) and
    results.md."""
    rows = sorted(rows, key=lambda row: (row["split"], row["shots"]))
    summary = []
    for k in settings["shots"]:
        of_k = [row for row in rows if row["shots"] == k]
        gain, ci = mean_ci([row["gain"] for row in of_k])
        summary.append(
            {
                "shots": k,
                "splits": len(of_k),
                "meta": statistics.mean(row["meta"] for row in of_k),
                "frozen": statistics.mean(row["frozen"] for row in of_k),
                "gain": gain,
                "gain_ci95": ci,
            }
        )
    lines = [
        "| shots | splits | frozen | meta-pretrained | gain (95% CI) |",
        "|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(
            f"| {row['shots']} | {row['splits']} | {row['frozen']:.2f} | {row['meta']:.2f} "
            f"| {row['gain']:+.2f} ± {row['gain_ci95']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps({"settings": settings, "rows": rows, "summary": summary}, indent=2) + "\n"
    )
    (output / "results.md").write_text(table)


if __name__ == "__main__":
    typer.run(main)
