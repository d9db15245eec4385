"""The new-labels benchmark's report (benchmarks/new_labels.py): the means and
95% CIs over splits or draws, the Markdown tables, and the targets."""

import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from benchmarks.new_intents import mean_ci

# the encoders' names in the rows
FROZEN = "frozen"
META = "meta-pretrained"


def stat(values: Sequence[float]) -> Tuple[float, float]:
    """mean_ci of the values that are numbers (NaN: nothing to score)."""
    values = [value for value in values if value == value]
    return mean_ci(values) if values else (float("nan"), float("nan"))


def summarize(
    rows: List[dict], methods: Sequence[str], new_part: str = "test"
) -> Tuple[List[dict], List[str]]:
    """Means and 95% CIs over splits / draws, and the Markdown tables."""
    summary: List[dict] = []
    lines: List[str] = []

    def group(protocol: str, key: Callable[[dict], Tuple]) -> Dict[Tuple, List[dict]]:
        groups: Dict[Tuple, List[dict]] = {}
        for row in rows:
            if row["protocol"] == protocol:
                groups.setdefault(key(row), []).append(row)
        return groups

    rounds = max((r["round"] for r in rows if r["protocol"] == "incremental"), default=0)
    new_domains = next((len(r["new_domains"]) for r in rows if r["protocol"] == "clinc150"), 0)
    few = next((r["few_below"] for r in rows if r["protocol"] == "long_tail"), 0)

    def cell(values: List[float]) -> str:
        mean, ci = stat(values)
        return f"{mean:.2f}" if ci != ci else f"{mean:.2f} ± {ci:.2f}"

    for protocol, over in (("banking77", "splits"), ("clinc150", "draws")):
        groups = group(protocol, lambda r: (r["encoder"], r["shots"], r["method"]))
        if not groups:
            continue
        title = {
            "banking77": "BANKING77 ProtAugment splits: old labels (train classes, 80% "
            f"of their utterances) beside new ones ({new_part} classes, K each)",
            "clinc150": f"CLINC150: {new_domains} domains new (K each), the others old "
            "(all their training data)",
        }[protocol]
        lines += [
            f"## {title}",
            "",
            f"Mean ± 95% CI over {over}.",
            "",
            "| encoder | shots | method | n | old | new | harmonic mean | all queries |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for (encoder, k, method), of in sorted(
            groups.items(), key=lambda g: (g[0][0], g[0][1], methods.index(g[0][2]))
        ):
            stats = {
                name: stat([r[name] for r in of]) for name in ("old", "new", "harmonic", "all")
            }
            summary.append(
                {
                    "protocol": protocol,
                    "encoder": encoder,
                    "shots": k,
                    "method": method,
                    "n": len(of),
                    **{name: m for name, (m, _) in stats.items()},
                    **{f"{name}_ci95": ci for name, (_, ci) in stats.items()},
                }
            )
            lines.append(
                f"| {encoder} | {k} | {method} | {len(of)} | "
                + " | ".join(
                    cell([r[name] for r in of]) for name in ("old", "new", "harmonic", "all")
                )
                + " |"
            )
        lines.append("")
    groups = group("incremental", lambda r: (r["encoder"], r["shots"], r["method"]))
    if groups:
        lines += [
            "## Incremental rounds: 5 rounds of 5 new labels added to the old ones",
            "",
            "Accuracy of each round's labels after the last round (round 0: the old "
            "labels), mean over splits; then the default's after every round.",
            "",
            "| encoder | shots | method | "
            + " | ".join(f"round {i}" for i in range(rounds + 1))
            + " |",
            "|---|---|---|" + "---|" * (rounds + 1),
        ]
        for (encoder, k, method), of in sorted(
            groups.items(), key=lambda g: (g[0][0], g[0][1], methods.index(g[0][2]))
        ):
            last = [r for r in of if r["round"] == rounds]
            means = [statistics.mean(r["accuracy"][i] for r in last) for i in range(rounds + 1)]
            after = [
                [
                    statistics.mean(r["accuracy"][i] for r in of if r["round"] == done)
                    for i in range(done + 1)
                ]
                for done in range(rounds + 1)
            ]
            summary.append(
                {
                    "protocol": "incremental",
                    "encoder": encoder,
                    "shots": k,
                    "method": method,
                    "n": len(last),
                    "after_each_round": after,
                }
            )
            lines.append(
                f"| {encoder} | {k} | {method} | " + " | ".join(f"{m:.2f}" for m in means) + " |"
            )
        for item in summary:
            if item["protocol"] == "incremental" and item["method"] == "default":
                lines += [
                    "",
                    f"{item['encoder']}, default, {item['shots']} shots, "
                    "after each round (rows) the accuracy of each round's labels:",
                    "",
                    "| after | " + " | ".join(f"round {i}" for i in range(rounds + 1)) + " |",
                    "|---|" + "---|" * (rounds + 1),
                ]
                for done, values in enumerate(item["after_each_round"]):
                    cells = [f"{v:.2f}" for v in values] + [""] * (rounds - done)
                    lines.append(f"| round {done} | " + " | ".join(cells) + " |")
        lines.append("")
    groups = group("long_tail", lambda r: (r["method"],))
    if groups:
        counts = next(iter(groups.values()))[0]["support_counts"]
        lines += [
            "## Long tail: BANKING77, 100 down to 1 examples a label (imbalance 100)",
            "",
            f"Mean ± 95% CI over draws; one draw's counts: min {counts[0]}, median "
            f"{counts[1]}, max {counts[2]}, {counts[3]} in all. Macro is the mean of each "
            "label's accuracy, micro the accuracy over all queries (equal here: the test set "
            f"has 40 a label); few and many: the labels with under {few} examples and the rest.",
            "",
            "| method | n | macro | micro | few | many |",
            "|---|---|---|---|---|---|",
        ]
        for (method,), of in sorted(groups.items(), key=lambda g: methods.index(g[0][0])):
            names = ("macro", "micro", "few", "many")
            stats = {name: stat([r[name] for r in of]) for name in names}
            summary.append(
                {
                    "protocol": "long_tail",
                    "method": method,
                    "n": len(of),
                    **{name: m for name, (m, _) in stats.items()},
                    **{f"{name}_ci95": ci for name, (_, ci) in stats.items()},
                }
            )
            cells = " | ".join(cell([r[name] for r in of]) for name in names)
            lines.append(f"| {method} | {len(of)} | {cells} |")
        lines.append("")
    balanced_rows = [r for r in rows if r["protocol"] == "balanced"]
    if balanced_rows:
        lines += [
            "## Balanced: all 77 BANKING77 labels, 10 each",
            "",
            "| method | accuracy |",
            "|---|---|",
        ]
        for row in balanced_rows:
            summary.append({k: v for k, v in row.items()})
            lines.append(f"| {row['method']} | {row['accuracy']:.2f} |")
        lines.append("")
    return summary, lines


def target_lines(summary: List[dict]) -> List[str]:
    """The issue's targets against what this run measured."""

    def find(**where) -> Optional[dict]:
        return next((s for s in summary if all(s.get(k) == v for k, v in where.items())), None)

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    lines = []
    five = find(protocol="banking77", encoder=FROZEN, shots=5, method="default")
    if five:
        lines.append(
            f"BANKING77 frozen, default, 5 shots: new {five['new']:.2f} (>= 78: "
            f"{verdict(five['new'] >= 78)}), old {five['old']:.2f} (>= 94: "
            f"{verdict(five['old'] >= 94)}), harmonic mean {five['harmonic']:.2f} (>= 85: "
            f"{verdict(five['harmonic'] >= 85)})"
        )
    one = find(protocol="banking77", encoder=FROZEN, shots=1, method="default")
    if one:
        lines.append(
            f"BANKING77 frozen, default, 1 shot: new {one['new']:.2f} (>= 50: "
            f"{verdict(one['new'] >= 50)})"
        )
    meta = find(protocol="banking77", encoder=META, shots=5, method="default")
    if five and meta:
        gain = meta["harmonic"] - five["harmonic"]
        lines.append(
            f"BANKING77 meta-pretrained on the old labels, default, 5 shots: harmonic "
            f"mean {meta['harmonic']:.2f}, {gain:+.2f} over frozen (>= +2: "
            f"{verdict(gain >= 2)})"
        )
    tail, prototypes = (
        find(protocol="long_tail", method="default"),
        find(protocol="long_tail", method="prototypes"),
    )
    if tail and prototypes:
        gain = tail["macro"] - prototypes["macro"]
        lines.append(
            f"Long tail, default: macro {tail['macro']:.2f}, {gain:+.2f} over the "
            f"prototypes (>= +2: {verdict(gain >= 2)})"
        )
    even = find(protocol="balanced", method="default")
    if even:
        lines.append(
            f"Balanced BANKING77 10-shot, default: {even['accuracy']:.2f} (>= 85.7: "
            f"{verdict(even['accuracy'] >= 85.7)})"
        )
    return lines
