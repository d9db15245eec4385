"""Write the figures the README and docs quote from the metrics files they
come from, so that a rerun updates the docs with its results: each region
between `<!-- figures: NAME -->` and `<!-- /figures -->` is replaced by the
table NAME, made from metrics/. With --check, write nothing and exit 1 if a
region differs from what the metrics give (tests/test_docs.py runs it).

    python scripts/doc_tables.py          # rewrite the regions
    python scripts/doc_tables.py --check  # are the docs up to date?
"""

import json
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "README.md",
    "docs/adaptation.md",
    "docs/adding-labels.md",
    "docs/benchmark.md",
    "docs/encoders.md",
    "docs/meta-pretraining.md",
    "docs/out-of-scope.md",
]
REGION = re.compile(r"(<!-- figures: ([\w-]+) -->\n)(.*?)(<!-- /figures -->)", re.S)


def load(path: str) -> Optional[dict]:
    file = ROOT / path
    return json.loads(file.read_text(encoding="utf8")) if file.exists() else None


def benchmark_row(rows: List[dict], method: str, shots: int) -> dict:
    return next((r for r in rows if r["method"] == method and r["shots"] == shots), {})


def cell(row: dict, key: str, fmt: str = "{:.2f}") -> str:
    return fmt.format(row[key]) if key in row else ""


def peers() -> str:
    """The README's table against peers: metrics/benchmark (make run) and
    classy-classification from metrics/speed (spacy project run speed)."""
    bench = load("metrics/benchmark/results.json")
    speed = load("metrics/speed/results_cpu.json")
    rows = bench["rows"] if bench else []
    classy = next((r for r in (speed or {}).get("rows", []) if "classy" in r["method"]), {})
    lines = [
        "| method | 1-shot | 10-shot | time to learn the 10-shot support |",
        "|---|---|---|---|",
    ]
    for label, method in (
        (
            "`few_shot_textcat` as `add_pipe` makes it: 100 head steps at `adapt()`, label names",
            "frozen (+100 steps)",
        ),
        ("`few_shot_textcat`, instant prototypes (`adapt_steps = 0`)", "frozen (prototypes)"),
    ):
        one, ten = benchmark_row(rows, method, 1), benchmark_row(rows, method, 10)
        lines.append(
            f"| {label} | {cell(one, 'accuracy')} | {cell(ten, 'accuracy')} "
            f"| {cell(ten, 'adapt_seconds', '{:.1f} s')} |"
        )
    lines.append(
        f"| classy-classification (SVM) | | {cell(classy, 'accuracy')} "
        f"| {cell(classy, 'adapt_seconds', '{:.1f} s')} |"
    )
    setfit = benchmark_row(rows, "SetFit", 1)
    lines.append(
        f"| SetFit | {cell(setfit, 'accuracy')} | "
        f"| {cell(setfit, 'adapt_seconds', '{:.0f} s')} at 1 shot |"
    )
    one, ten = benchmark_row(rows, "spacy textcat", 1), benchmark_row(rows, "spacy textcat", 10)
    lines.append(
        f"| spaCy `textcat` (from scratch, 10 epochs) | {cell(one, 'accuracy')} "
        f"| {cell(ten, 'accuracy')} | {cell(ten, 'adapt_seconds', '{:.0f} s')} |"
    )
    return "\n".join(lines) + "\n"


def mean_ci(item: dict, key: str) -> str:
    ci = item.get(f"{key}_ci95")
    value = item.get(key)
    if value is None or value != value:
        return ""
    return f"{value:.2f}" if ci is None or ci != ci else f"{value:.2f} ± {ci:.2f}"


def generalized(path: str, protocol: str, encoder: str, methods: Optional[List[str]] = None) -> str:
    results = load(path)
    lines = [
        "| shots | method | old labels | new labels | harmonic mean | all queries |",
        "|---|---|---|---|---|---|",
    ]
    for item in (results or {}).get("summary", []):
        chosen = methods is None or item["method"] in methods
        if item["protocol"] == protocol and item["encoder"] == encoder and chosen:
            cells = " | ".join(mean_ci(item, key) for key in ("old", "new", "harmonic", "all"))
            lines.append(f"| {item['shots']} | {item['method']} | {cells} |")
    return "\n".join(lines) + "\n"


# every label balance side by side, with the frozen encoder
BALANCE_METHODS = ["default", "prototypes", "logit adjustment tau 1", "reweighting", "no balance"]


def new_labels_frozen(protocol: str) -> str:
    return generalized("metrics/new_labels/results.json", protocol, "frozen", BALANCE_METHODS)


def new_labels_headline() -> str:
    """The README's: 5 new labels' examples beside old labels with about 110."""
    results = load("metrics/new_labels/results.json") or {}
    lines = [
        "| adaptation | old labels | new labels (5 examples) | harmonic mean |",
        "|---|---|---|---|",
    ]
    names = {
        "default": "`label_balance` as `add_pipe` sets it (logit adjustment)",
        "no balance": '`label_balance = "none"` (the support\'s frequencies learned)',
        "prototypes": "instant prototypes (`adapt_steps = 0`)",
    }
    for method, name in names.items():
        item = next(
            (
                s
                for s in results.get("summary", [])
                if s["protocol"] == "banking77"
                and s["encoder"] == "frozen"
                and s["shots"] == 5
                and s["method"] == method
            ),
            None,
        )
        if item:
            cells = " | ".join(mean_ci(item, key) for key in ("old", "new", "harmonic"))
            lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def new_labels_selection() -> str:
    return generalized("metrics/new_labels_selection/results.json", "banking77", "frozen")


def new_labels_meta_pretrained() -> str:
    path = "metrics/new_labels_meta_pretrained/results.json"
    results = load(path) or {}
    lines = [
        "| shots | method | encoder | old labels | new labels | harmonic mean |",
        "|---|---|---|---|---|---|",
    ]
    for item in results.get("summary", []):
        if item["protocol"] == "banking77" and item["method"] in ("default", "no balance"):
            cells = " | ".join(mean_ci(item, key) for key in ("old", "new", "harmonic"))
            lines.append(f"| {item['shots']} | {item['method']} | {item['encoder']} | {cells} |")
    return "\n".join(lines) + "\n"


def new_labels_long_tail() -> str:
    results = load("metrics/new_labels/results.json") or {}
    lines = [
        "| method | macro (= micro) | labels under 10 examples | 10 or more |",
        "|---|---|---|---|",
    ]
    for item in results.get("summary", []):
        if item["protocol"] == "long_tail":
            cells = " | ".join(mean_ci(item, key) for key in ("macro", "few", "many"))
            lines.append(f"| {item['method']} | {cells} |")
    return "\n".join(lines) + "\n"


def new_labels_incremental() -> str:
    results = load("metrics/new_labels/results.json") or {}
    item = next(
        (
            s
            for s in results.get("summary", [])
            if s["protocol"] == "incremental"
            and s["method"] == "default"
            and s["encoder"] == "frozen"
        ),
        None,
    )
    if item is None:
        return ""
    rounds = len(item["after_each_round"])
    lines = [
        "| after | old labels | " + " | ".join(f"round {i}" for i in range(1, rounds)) + " |",
        "|---|---|" + "---|" * (rounds - 1),
    ]
    for done, values in enumerate(item["after_each_round"]):
        cells = [f"{v:.2f}" for v in values] + [""] * (rounds - 1 - done)
        lines.append(
            f"| {'the old labels' if done == 0 else f'round {done}'} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def new_labels_targets() -> str:
    results = load("metrics/new_labels/results.json") or {}
    meta = load("metrics/new_labels_meta_pretrained/results.json") or {}
    lines = [
        f"- {line}"
        for line in results.get("targets", [])
        + [t for t in meta.get("targets", []) if "meta-pretrained" in t]
    ]
    return "\n".join(lines) + "\n"


def benchmark() -> str:
    """What `make run`'s benchmark step printed, as it printed it."""
    path = ROOT / "metrics" / "benchmark" / "results.md"
    return path.read_text(encoding="utf8") if path.exists() else ""


def adaptation_paths() -> str:
    """docs/adaptation.md's three paths: metrics/benchmark (make run) and
    metrics/deep (spacy project run deep), frozen encoder, label names."""
    rows = (load("metrics/benchmark/results.json") or {}).get("rows", [])
    deep = {k: load(f"metrics/deep/banking77_{k}shot_frozen_deep10.json") or {} for k in (5, 10)}
    paths = [
        (
            "prototypes (instant)",
            "nearest class mean, at the learner's temperature",
            "`steps=0`, or `adapt_steps = 0`",
            "frozen (prototypes)",
        ),
        (
            "head steps",
            "a linear head started from the prototypes, 100 gradient steps of 30 "
            "on the kept examples, the support's label frequencies taken out (`label_balance`)",
            "the default (`adapt_steps = 100`, `adapt_learn_rate = 30`), as `add_pipe` and the "
            "shipped training configs set",
            "frozen (+100 steps)",
        ),
    ]
    lines = [
        "| path | how | set by | BANKING77, 77 labels, 10-shot | 5-shot "
        "| adapt() for 770 texts, 2 cores |",
        "|---|---|---|---|---|---|",
    ]
    for name, how, by, method in paths:
        ten, five = benchmark_row(rows, method, 10), benchmark_row(rows, method, 5)
        lines.append(
            f"| {name} | {how} | {by} | {cell(ten, 'accuracy')} "
            f"| {cell(five, 'accuracy')} | {cell(ten, 'adapt_seconds', '{:.1f} s')} |"
        )
    lines.append(
        "| deep | 10 steps through the encoder's top 2 layers, then the head steps "
        "| `deep_steps=10`, or `deep_adapt_steps = 10` "
        f"| {cell(deep[10], 'accuracy')} | {cell(deep[5], 'accuracy')} "
        f"| {cell(deep[10], 'adapt_seconds', '{:.0f} s')} |"
    )
    return "\n".join(lines) + "\n"


def markdown_table(path: str) -> str:
    """The table of a results.md (its lines that start with '|')."""
    file = ROOT / path
    lines = file.read_text(encoding="utf8").splitlines() if file.exists() else []
    return "".join(line + "\n" for line in lines if line.startswith("|"))


def nth_table(path: str, index: int) -> str:
    """The index-th table of a results.md that holds several, blank lines
    between them."""
    file = ROOT / path
    text = file.read_text(encoding="utf8") if file.exists() else ""
    tables = [block for block in text.split("\n\n") if block.startswith("|")]
    return tables[index].strip("\n") + "\n" if index < len(tables) else ""


TABLES: Dict[str, Callable[[], str]] = {
    "adaptation-paths": adaptation_paths,
    "new-intents": lambda: markdown_table("metrics/new_intents/results.md"),
    "oos": lambda: markdown_table("metrics/oos/results.md"),
    "oos-head": lambda: markdown_table("metrics/oos_head/results.md"),
    "peers": peers,
    "benchmark": benchmark,
    "new-labels-banking77": lambda: new_labels_frozen("banking77"),
    "new-labels-clinc150": lambda: new_labels_frozen("clinc150"),
    "new-labels-meta-pretrained": new_labels_meta_pretrained,
    "new-labels-selection": new_labels_selection,
    "new-labels-headline": new_labels_headline,
    "new-labels-long-tail": new_labels_long_tail,
    "new-labels-incremental": new_labels_incremental,
    "new-labels-targets": new_labels_targets,
    "encoders-accuracy": lambda: nth_table("metrics/encoders/results.md", 0),
    "encoders-cost": lambda: nth_table("metrics/encoders/results.md", 1),
}


def rewritten(text: str) -> str:
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown figures region {name!r}: one of {sorted(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

    return REGION.sub(table, text)


def main(check: bool) -> int:
    stale = []
    for page in PAGES:
        path = ROOT / page
        if not path.exists():
            continue
        text = path.read_text(encoding="utf8")
        new = rewritten(text)
        if new != text:
            stale.append(page)
            if not check:
                path.write_text(new, encoding="utf8")
    if check and stale:
        print(f"Out of date with metrics/: {', '.join(stale)} (run python scripts/doc_tables.py)")
        return 1
    print("Up to date" if check else f"Rewrote: {', '.join(stale) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
