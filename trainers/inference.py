"""A model folder loaded for inference: texts prepared by the model's recipe, then labelled."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from recipe.text_recipe import PreparedText, TextRecipe
from trainers.abstain import apply_abstain
from trainers.evidence import EvidenceIndex
from trainers.registry import RECIPE_FILE, model_card, read_label_map
from trainers.scorers import Scorer


@dataclass
class Prediction:
    """One text's predicted label and its probability; or, for a text the model must not see, why."""

    label: str | None
    score: float | None
    text: str = ""  # the text as the model saw it (prepared by the model's recipe)
    refused: str | None = None
    tasks: dict[str, Prediction] | None = None  # a multi-task model's answer for every task, the primary included


class Classifier:
    """An exported model folder, loaded for inference: its scorer (which the model kind chose, see
    `trainers.kinds.load_classifier`), its labels, its text recipe and its abstain threshold."""

    def __init__(self, folder: Path, scorer: Scorer):
        self.folder = folder
        # one forward pass at a time: the service's batcher and its evidence lookups share the model and tokenizer
        self.scoring = threading.Lock()
        card = model_card(folder)
        self.scorer = scorer
        self.precision = self.scorer.precision
        label_map = read_label_map(folder)
        self.labels = [label for label, _ in sorted(label_map.items(), key=lambda item: item[1])]
        recipe = folder / RECIPE_FILE
        self.recipe = TextRecipe.from_dict(json.loads(recipe.read_text())) if recipe.is_file() else None
        abstain = card.get("abstain") or {}
        self.abstain_id = self.labels.index(abstain["label"]) if abstain else None
        self.abstain_threshold = float(abstain.get("threshold", 0.0))

    @cached_property
    def evidence_index(self) -> EvidenceIndex | None:
        """The training examples this model can cite, loaded on first use (None: exported without them)."""
        return EvidenceIndex.load(self.folder)

    def evidence(self, texts: list[str], k: int) -> list[list[dict]]:
        """The `k` training examples nearest to each text under the model's own vectors; none for a refused text."""
        prepared = self.prepare(texts)
        accepted = [i for i, p in enumerate(prepared) if p.refused is None]
        found: list[list[dict]] = [[] for _ in texts]
        for i, nearest in zip(accepted, self.nearest_examples([prepared[i].text for i in accepted], k), strict=True):
            found[i] = nearest
        return found

    def nearest_examples(self, prepared: list[str], k: int) -> list[list[dict]]:
        """The `k` training examples nearest to each text already prepared by the recipe (as the log keeps them)."""
        index = self.evidence_index
        if index is None:
            raise FileNotFoundError(f"{self.folder}: exported without an evidence index; train the model again")
        if not prepared:
            return []
        with self.scoring:
            vectors = self.scorer.embeddings(prepared)
        return index.nearest(vectors, k)

    def prepare(self, texts: list[str]) -> list[PreparedText]:
        """The texts as the model must see them: prepared by its recipe, or refused with the reason."""
        if self.recipe is None:  # a model exported before recipes travelled with models
            return [PreparedText(text) for text in texts]
        return self.recipe.prepare(texts)

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities for each text, prepared by the model's recipe."""
        return self.scorer.probabilities([p.text for p in self.prepare(texts)], batch_size)

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        """The most probable label of each prepared text (or the abstain label below its threshold); a text the
        recipe refuses gets its reason instead of a guess."""
        prepared = self.prepare(texts)
        accepted = [i for i, p in enumerate(prepared) if p.refused is None]
        predictions = [Prediction(None, None, p.text, p.refused) for p in prepared]
        if accepted:
            texts = [prepared[i].text for i in accepted]
            per_task = self.task_probabilities(texts, batch_size)
            decided = self.decide(next(iter(per_task.values())), texts)
            if len(per_task) > 1:  # one forward pass answered every task
                labels = self.task_labels()
                for row, prediction in enumerate(decided):
                    prediction.tasks = {
                        task: Prediction(
                            labels[task][int(p[row].argmax())], round(float(p[row].max()), 6), prediction.text
                        )
                        for task, p in per_task.items()
                    }
                    prediction.tasks[next(iter(per_task))] = Prediction(
                        prediction.label, prediction.score, prediction.text
                    )  # abstain applied
            for i, prediction in zip(accepted, decided, strict=True):
                predictions[i] = prediction
        return predictions

    def task_probabilities(self, prepared: list[str], batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Each task's probabilities of prepared texts; a single-task model's one task is `label`."""
        with self.scoring:
            if hasattr(self.scorer, "task_probabilities"):
                return self.scorer.task_probabilities(prepared, batch_size)
            return {"label": self.scorer.probabilities(prepared, batch_size)}

    def task_labels(self) -> dict[str, list[str]]:
        """Each task's labels in id order; a single-task model has one task, `label`."""
        tasks = getattr(self.scorer, "tasks", None)
        if tasks is None:
            return {"label": self.labels}
        return {task: sorted(labels, key=labels.get) for task, labels in tasks.items()}

    def predict_tasks(self, texts: list[str], batch_size: int = 64) -> list[dict[str, Prediction]]:
        """Every task's label and score for each text, from one forward pass; a refused text gets its reason."""
        tasks = list(self.task_labels())
        return [p.tasks or dict.fromkeys(tasks, p) for p in self.predict(texts, batch_size)]

    def decide(self, probabilities: torch.Tensor, texts: list[str] | None = None) -> list[Prediction]:
        """Predictions from probabilities already computed: the top label, or the abstain label below its threshold."""
        indices = probabilities.argmax(dim=-1)
        if self.abstain_id is not None:
            indices = apply_abstain(probabilities, self.abstain_id, self.abstain_threshold)
        scores = probabilities.gather(1, indices.unsqueeze(1)).squeeze(1)
        texts = texts or [""] * len(scores)
        return [
            Prediction(self.labels[i], round(float(s), 6), text)
            for s, i, text in zip(scores, indices.tolist(), texts, strict=True)
        ]
