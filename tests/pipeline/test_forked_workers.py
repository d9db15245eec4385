"""nlp.pipe(n_process=2) is as quiet as spaCy users expect: Hugging Face
tokenizers' fork warning is not printed by the workers, and the parent keeps
its own TOKENIZERS_PARALLELISM."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys, spacy
    nlp = spacy.blank("en")
    tok2vec = {"@architectures": "spacy_metalearn.TransformerEncoder.v1", "name": sys.argv[1]}
    encoder = {"@architectures": "spacy_metalearn.DocEncoder.v1", "tok2vec": tok2vec}
    head = {"@architectures": "spacy_metalearn.PrototypeHead.v2", "metric": "cosine"}
    model = {"@architectures": "spacy_metalearn.FewShotClassifier.v1", "encoder": encoder,
             "head": head}
    nlp.add_pipe("few_shot_textcat", config={"model": model})
    nlp.initialize()
    # batches of 40 texts: the tokenizer's thread pool runs in the parent
    nlp.get_pipe("few_shot_textcat").adapt({"a": ["I lost my card"] * 40,
                                            "b": ["where is my refund"] * 40})
    docs = list(nlp.pipe(["my card", "refund please"] * 10, n_process=2, batch_size=4))
    assert len(docs) == 20 and all(doc.cats for doc in docs)
    print("PARALLELISM", os.environ.get("TOKENIZERS_PARALLELISM"))
    """
)


def test_workers_print_no_tokenizers_fork_warning(tiny_bert, tmp_path):
    script = tmp_path / "pipe.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "TOKENIZERS_PARALLELISM"}
    result = subprocess.run(
        [sys.executable, str(script), tiny_bert], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "huggingface/tokenizers" not in result.stderr
    assert "PARALLELISM None" in result.stdout
