"""A model folder loaded for inference: texts prepared by the model's recipe, then labelled."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from recipe.text_recipe import PreparedText, TextRecipe
from trainers.abstain import apply_abstain
from trainers.registry import LABEL_MAP, RECIPE_FILE
from trainers.scorers import load_scorer, model_card


@dataclass
class Prediction:
    """One text's predicted label and its probability; or, for a text the model must not see, why."""

    label: str | None
    score: float | None
    text: str = ""  # the text as the model saw it (prepared by the model's recipe)
    refused: str | None = None


class Classifier:
    """An exported model folder, loaded for inference: a transformer or a TF-IDF model behind one contract."""

    def __init__(self, folder: Path, max_length: int | None = None, quantize: bool = False):
        self.folder = folder
        card = model_card(folder)
        self.scorer = load_scorer(folder, card, max_length, quantize)
        self.precision = self.scorer.precision
        label_map = json.loads((folder / LABEL_MAP).read_text())
        self.labels = [label for label, _ in sorted(label_map.items(), key=lambda item: item[1])]
        recipe = folder / RECIPE_FILE
        self.recipe = TextRecipe.from_dict(json.loads(recipe.read_text())) if recipe.is_file() else None
        abstain = card.get("abstain") or {}
        self.abstain_id = self.labels.index(abstain["label"]) if abstain else None
        self.abstain_threshold = float(abstain.get("threshold", 0.0))

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
            probabilities = self.scorer.probabilities(texts, batch_size)
            for i, prediction in zip(accepted, self.decide(probabilities, texts), strict=True):
                predictions[i] = prediction
        return predictions

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
