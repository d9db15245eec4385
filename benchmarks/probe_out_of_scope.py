"""How in_scope_quantile's default is chosen: on CLINC150's validation split
(never its test split), the frozen default pipeline with unknown_label set,
adapted to the K-shot support as it ships (the instant prototypes) and with
`--steps` head steps of `--learn-rate` (as the meta-pretrained pipelines
adapt), and for each quantile the in-scope accuracy drop (abstaining counts as
wrong) and the out-of-scope recall of the component's own decision: the
nearest prototype's similarity against the support's leave-one-out ones, or
the head's top logit against the support's held-out ones.

    python -m benchmarks.probe_out_of_scope assets/few_shot_intent_detection/CLINC150 \
        --shots 10 --split valid
"""

from pathlib import Path

import typer


def main(
    data: Path = typer.Argument(..., help="CLINC150: train_K/, <split>/, oos/<split>/seq.in"),
    shots: int = typer.Option(10),
    split: str = typer.Option("valid", help="valid (to choose on) or test"),
    quantiles: str = typer.Option("0.02,0.03,0.04,0.05,0.06,0.08"),
    steps: int = typer.Option(100),
    learn_rate: float = typer.Option(30.0),
) -> None:
    from sklearn.metrics import roc_auc_score

    from spacy_metalearn.data import group_by_label, read_labelled
    from spacy_metalearn.evaluation import DEFAULT_MODEL, find_component, load_pipeline

    support = group_by_label(read_labelled(data / f"train_{shots}"))
    test = read_labelled(data / split)
    lines = (data / "oos" / split / "seq.in").read_text(encoding="utf8").splitlines()
    oos = [line.strip() for line in lines if line.strip()]
    config = {"unknown_label": "oos", "adapt_learn_rate": learn_rate}  # with steps > 0 only
    component = find_component(load_pipeline(DEFAULT_MODEL, settings=config))
    embeddings = component.embedder([text for text, _ in test] + oos)
    n_test = len(test)
    print(f"{split}: {n_test} in scope, {len(oos)} out of scope, {shots}-shot support")
    for name, adapt_steps in (("prototypes", 0), (f"{steps} head steps of {learn_rate}", steps)):
        component.adapt(support, replace=True, steps=adapt_steps)
        adaptation = component.adaptation
        scores = adaptation.scores(embeddings, exclusive_classes=True)
        predicted = [adaptation.labels[i] for i in scores[:n_test].argmax(1).tolist()]
        correct = [p == label for p, (_, label) in zip(predicted, test)]
        never = 100.0 * sum(correct) / n_test
        in_scope_scores = adaptation.in_scope_scores(embeddings).tolist()
        auroc = roc_auc_score([1] * n_test + [0] * len(oos), in_scope_scores)
        print(f"{name}: never abstaining {never:.2f}, AUROC {auroc:.3f}")
        for quantile in (float(value) for value in quantiles.split(",")):
            kept = adaptation.in_scope(embeddings, quantile).tolist()
            accuracy = 100.0 * sum(c and k for c, k in zip(correct, kept)) / n_test
            recall = 100.0 * sum(not k for k in kept[n_test:]) / len(oos)
            print(f"  quantile {quantile}: drop {never - accuracy:.2f}, OOS recall {recall:.1f}")


if __name__ == "__main__":
    typer.run(main)
