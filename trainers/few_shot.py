"""Few-shot labels with prototypical networks: episodic meta-training of the encoder, a prototype head, and a new
label added from k examples without a gradient step.

A prototypical network scores a text by the negative squared distance of its features h to each label's
prototype c (the mean features of the label's examples): -|h - c|^2 = 2c.h - |c|^2 - |h|^2, and the last
term is the same for every label. So a prototype head is an ordinary linear output layer (weights 2c/T,
bias -|c|^2/T, T a temperature fitted on val): the exported model stays a plain transformers classifier
that `Classifier`, evaluation and the service load as they are, and adding a label appends one row.
"""

from __future__ import annotations

import random

import torch

from trainers.encoding import encode
from trainers.transfer import output_layer

TEMPERATURES = [2.0**power for power in range(-4, 9)]


def head_inputs(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64, grad: bool = False):
    """The features the output layer reads, one row per text (captured by a forward hook on it)."""
    captured: list[torch.Tensor] = []
    device = next(model.parameters()).device
    hook = output_layer(model).register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
    try:
        with torch.set_grad_enabled(grad):
            for start in range(0, len(texts), batch_size):
                ids = encode(tokenizer, texts[start : start + batch_size], max_length)
                batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(device)
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        hook.remove()
    hidden = output_layer(model).in_features
    return torch.cat(captured) if captured else torch.zeros((0, hidden), device=device)


def prototype_rows(features: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear weights 2c and biases -|c|^2 of each class's prototype c (temperature 1)."""
    prototypes = torch.zeros((classes, features.shape[1]))
    prototypes.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).unsqueeze(1)
    prototypes = prototypes / counts
    return 2 * prototypes, -(prototypes * prototypes).sum(1)


def fit_temperature(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """The temperature with the lowest negative log-likelihood on these rows (a grid of powers of two)."""
    if not len(labels):
        return 1.0
    logits = features @ weight.T + bias
    losses = [float(torch.nn.functional.cross_entropy(logits / t, labels)) for t in TEMPERATURES]
    return TEMPERATURES[losses.index(min(losses))]


@torch.no_grad()
def set_output_rows(model, weight: torch.Tensor, bias: torch.Tensor, label_map: dict[str, int]) -> None:
    """Replace the output layer by one with these rows, and the config's labels by the label map's."""
    old = output_layer(model)
    new = torch.nn.Linear(old.in_features, weight.shape[0])
    new.weight.copy_(weight)
    new.bias.copy_(bias)
    for module in model.modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
    model.config.num_labels = len(label_map)
    model.num_labels = len(label_map)
    model.config.id2label = {i: label for label, i in label_map.items()}
    model.config.label2id = dict(label_map)


def to_prototype_head(
    model,
    tokenizer,
    train: tuple[list[str], list[int]],
    val: tuple[list[str], list[int]],
    label_map: dict[str, int],
    max_length: int,
) -> dict[str, object]:
    """Make the output layer a prototype head over the train split's labels, its temperature fitted on val."""
    model.eval()
    features = head_inputs(model, tokenizer, train[0], max_length)
    weight, bias = prototype_rows(features, torch.tensor(train[1]), len(label_map))
    val_features = head_inputs(model, tokenizer, val[0], max_length)
    temperature = fit_temperature(val_features, torch.tensor(val[1], dtype=torch.long), weight, bias)
    set_output_rows(model, weight / temperature, bias / temperature, label_map)
    counts = torch.bincount(torch.tensor(train[1]), minlength=len(label_map)).tolist()
    return {
        "temperature": temperature,
        "examples": dict(zip(sorted(label_map, key=label_map.get), counts, strict=True)),
    }


def add_prototype_labels(
    model, tokenizer, examples: dict[str, list[str]], label_map: dict[str, int], temperature: float, max_length: int
) -> dict[str, int]:
    """Append one prototype row per new label from its examples (no gradient step); the grown label map."""
    model.eval()
    clashing = sorted(set(examples) & set(label_map))
    if clashing:
        raise ValueError(f"labels {clashing} are already known to the model")
    old = output_layer(model)
    grown = dict(label_map)
    weight, bias = [old.weight.detach()], [old.bias.detach()]
    for label, texts in examples.items():
        if not texts:
            raise ValueError(f"label {label!r} has no examples")
        features = head_inputs(model, tokenizer, texts, max_length)
        rows, offsets = prototype_rows(features, torch.zeros(len(texts), dtype=torch.long), 1)
        weight.append(rows / temperature)
        bias.append(offsets / temperature)
        grown[label] = len(grown)
    set_output_rows(model, torch.cat(weight), torch.cat(bias), grown)
    return grown


@torch.no_grad()
def calibrate_new_rows(
    model, tokenizer, known: tuple[list[str], list[int]], new_rows: int, max_length: int, budget: float = 0.005
) -> float:
    """Lower the biases of the last `new_rows` output rows by the least offset that keeps accuracy on texts of known
    labels (`known`: texts and label ids, e.g. a val split) within `budget` of what it was without them; the offset.

    Five examples make a prototype that also sits near neighbouring known labels; the offset trades a little of
    the new labels' recall for the known labels' accuracy, measured, as the abstain threshold does.
    """
    if not known[0]:
        return 0.0
    layer = output_layer(model)
    features, targets = head_inputs(model, tokenizer, known[0], max_length), torch.tensor(known[1])
    logits = features @ layer.weight.T + layer.bias
    old = logits[:, :-new_rows]
    floor = float((old.argmax(-1) == targets).float().mean()) - budget
    spread = float(old.std()) or 1.0
    for offset in [spread * step / 8 for step in range(0, 65)]:
        shifted = torch.cat([old, logits[:, -new_rows:] - offset], dim=1)
        if float((shifted.argmax(-1) == targets).float().mean()) >= floor:
            break
    layer.bias[-new_rows:] -= offset
    return round(offset, 6)


def meta_train(
    model,
    tokenizer,
    examples: tuple[list[str], list[int]],
    *,
    episodes: int,
    ways: int = 10,
    shots: int = 5,
    queries: int = 5,
    learning_rate: float = 2e-5,
    max_length: int = 64,
    seed: int = 13,
    device: str | None = None,
) -> list[float]:
    """Episodic training of the encoder with the prototypical loss: each episode draws `ways` labels, `shots`
    support and `queries` query texts of each, and classifies the queries by their distance to the support
    prototypes. Returns the loss of each episode."""
    by_label: dict[int, list[str]] = {}
    for text, label in zip(*examples, strict=True):
        by_label.setdefault(label, []).append(text)
    eligible = [label for label, rows in by_label.items() if len(rows) >= shots + queries]
    if len(eligible) < 2:
        raise ValueError(f"meta-training needs 2 labels with {shots + queries} examples each; {len(eligible)} have")
    generator = random.Random(seed)
    home = next(model.parameters()).device
    model.to(device or home)  # Lightning hands the model back on the CPU; the episodes may run on the GPU
    trainable = [p for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate)
    model.train()
    losses = []
    for _ in range(episodes):
        chosen = generator.sample(eligible, min(ways, len(eligible)))
        drawn = {label: generator.sample(by_label[label], shots + queries) for label in chosen}
        support = [text for label in chosen for text in drawn[label][:shots]]
        query = [text for label in chosen for text in drawn[label][shots:]]
        features = head_inputs(model, tokenizer, support + query, max_length, grad=True)
        prototypes = features[: len(support)].view(len(chosen), shots, -1).mean(1)
        distances = torch.cdist(features[len(support) :], prototypes) ** 2
        targets = torch.arange(len(chosen), device=features.device).repeat_interleave(queries)
        loss = torch.nn.functional.cross_entropy(-distances, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.to(home).eval()
    return losses
