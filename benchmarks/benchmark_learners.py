"""Meta-train each learner with the same budget on the train classes of a
ProtAugment split, pick the checkpoint on its valid classes, and report 5-way
1- and 5-shot accuracy (mean, 95% CI over episodes) on its test classes, beside
the frozen encoder with no meta-learning, plus training speed and peak memory.

python -m benchmarks.benchmark_learners DATA_DIR SPLIT OUTPUT_DIR [--steps N] [--gpu-id G]
    [--meta-train-layers L]

--meta-train-layers L meta-trains only the transformer's top L layers (the
component's meta_train_layers setting: the lower ones frozen, their outputs
computed once per text).
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer

LEARNERS = ["protonet", "matching", "maml", "fomaml", "proto_maml", "reptile"]

# Runs a command and prints its peak resident memory (KiB) as the last line.
MEASURED = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def run(cmd, log):
    """Run `cmd`, appending its output to `log`; return (seconds, peak MiB)."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with open(log, "a") as out:
        result = subprocess.run(
            [sys.executable, "-c", MEASURED, *cmd], stdout=subprocess.PIPE, stderr=out, text=True
        )
        out.write(result.stdout)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}); see {log}")
    peak_kib = int(result.stdout.strip().splitlines()[-1])
    return time.perf_counter() - start, peak_kib / 1024


def main(
    data_dir: Path = typer.Argument(..., help="e.g. assets/protaugment_splits/BANKING77"),
    split: str = typer.Argument(..., help="e.g. 01"),
    output_dir: Path = typer.Argument(...),
    steps: int = typer.Option(60, help="Training episodes per learner"),
    eval_episodes: int = typer.Option(30, help="Dev episodes per evaluation"),
    test_episodes: int = typer.Option(600),
    gpu_id: int = typer.Option(-1),
    learners: str = typer.Option(",".join(LEARNERS)),
    meta_train_layers: Optional[int] = typer.Option(None, help="Train only the top L layers"),
) -> None:

    out = output_dir
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    full = data_dir / "full.jsonl"
    labels = {
        part: data_dir / "few_shot" / split / f"labels.{part}.txt"
        for part in ("train", "valid", "test")
    }
    corpus = {part: out / f"{part}.spacy" for part in ("train", "valid")}
    for part, path in corpus.items():
        run(
            [
                sys.executable,
                "-m",
                "spacy_metalearn",
                "corpus",
                str(full),
                str(path),
                "--labels",
                str(labels[part]),
                "--force",
            ],
            log,
        )

    rows = []
    models = [("frozen (no meta-learning)", "default", None)]
    for learner in learners.split(","):
        train_dir = out / learner
        seconds, peak = run(
            [
                sys.executable,
                "-m",
                "spacy",
                "train",
                f"configs/{learner}.cfg",
                "--output",
                str(train_dir),
                "--paths.train",
                str(corpus["train"]),
                "--paths.dev",
                str(corpus["valid"]),
                "--training.max_steps",
                str(steps),
                "--training.eval_frequency",
                str(steps // 2),
                "--components.few_shot_textcat.scorer.n_episodes",
                str(eval_episodes),
                # the protocol of this comparison: random episodes over one
                # dataset's classes, lr 2e-5, each learner adapting its own way
                "--training.batcher.group_separator",
                "null",
                "--components.few_shot_textcat.scorer.group_separator",
                "null",
                "--training.optimizer.learn_rate",
                "0.00002",
                "--components.few_shot_textcat.adapt_steps",
                "null",
                "--components.few_shot_textcat.adapt_learn_rate",
                "null",
                "--gpu-id",
                str(gpu_id),
                *(
                    []
                    if meta_train_layers is None
                    else [
                        "--components.few_shot_textcat.meta_train_layers",
                        str(meta_train_layers),
                    ]
                ),
            ],
            log,
        )
        models.append(
            (
                learner,
                str(train_dir / "model-best"),
                {"train_seconds": seconds, "train_peak_mib": peak},
            )
        )
    for name, model, training in models:
        result_path = out / f"episodes_{name.split()[0]}.json"
        run(
            [
                sys.executable,
                "-m",
                "spacy_metalearn",
                "episodes",
                model,
                str(full),
                "--labels",
                str(labels["test"]),
                "--shots",
                "1,5",
                "--n-episodes",
                str(test_episodes),
                "--output",
                str(result_path),
                "--force",
            ],
            log,
        )
        one, five = json.loads(result_path.read_text())
        row = {
            "learner": name,
            "5w1s": one["accuracy"],
            "5w1s_ci95": one["ci95"],
            "5w5s": five["accuracy"],
            "5w5s_ci95": five["ci95"],
        }
        if training:
            row.update(training)
            row["episodes_per_second"] = steps / training["train_seconds"]
        rows.append(row)
    summary = {
        "data": str(data_dir),
        "split": split,
        "steps": steps,
        "gpu_id": gpu_id,
        "meta_train_layers": meta_train_layers,
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"ProtAugment {data_dir.name} split {split}, test classes; "
        f"{test_episodes} episodes, 5 queries per class; meta-training budget "
        f"{steps} episodes per learner (episodes/s over the whole spacy train run, "
        f"initialization and dev evaluations included); gpu_id {gpu_id}; "
        + (
            "the whole encoder meta-trained."
            if meta_train_layers is None
            else f"only the top {meta_train_layers} transformer layers meta-trained "
            "(meta_train_layers), the lower ones frozen."
        ),
        "",
        "| learner | 5-way 1-shot | 5-way 5-shot | episodes/s | peak MiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        speed = f"{r['episodes_per_second']:.2f}" if "episodes_per_second" in r else "-"
        peak = f"{r['train_peak_mib']:.0f}" if "train_peak_mib" in r else "-"
        lines.append(
            f"| {r['learner']} | {r['5w1s']:.2f} ± {r['5w1s_ci95']:.2f} | "
            f"{r['5w5s']:.2f} ± {r['5w5s_ci95']:.2f} | {speed} | {peak} |"
        )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    typer.run(main)
