"""The evidence behind a served prediction: the training examples nearest to its text under the model version that
answered, from that model folder's evidence index (built at export over the train split's masked texts).

A prediction months old still finds its evidence: the prediction log keeps the model version and the prepared
text, and the registry keeps the version's folder.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

import polars as pl
from fastapi import FastAPI, Request

from contracts.model_folder import CLASSIFIER
from contracts.store_options import object_store_options
from contracts.tables import SERVICE_PREDICTIONS
from service.access import require_token
from service.logbook import DeltaAppender
from service.requests import RecentPredictions, RequestError, evidence_count
from service.served import ServedModel, ServedModels
from trainers.kinds import load_classifier

LOGGED = ("prediction_id", "predicted_at", "dataset", "model_version", "text", "label", "score")


class NoEvidenceError(LookupError):
    """A prediction, or its model's evidence, that cannot be found; the message says which."""


def logged_prediction(lake: Path | str, prediction_id: str) -> dict | None:
    """The prediction log's row for one id (None when the log does not hold it)."""
    uri = f"{str(lake).rstrip('/')}/{SERVICE_PREDICTIONS}"
    if "://" not in uri and not (Path(uri) / "_delta_log").is_dir():
        return None
    options = object_store_options(str(lake), None) or None
    found = pl.scan_delta(uri, storage_options=options).filter(pl.col("prediction_id") == prediction_id)
    rows = found.select(LOGGED).head(1).collect().to_dicts()
    return rows[0] if rows else None


@lru_cache(maxsize=2)
def classifier_of_version(folder: Path):
    """An older model version, loaded once for the evidence of its predictions (the two most recent kept)."""
    return load_classifier(folder)


def prediction_evidence(prediction: dict, registry: Path, k: int, *, loaded=None, loaded_version: str | None = None):
    """The `k` nearest training examples of a logged prediction, under the model version that answered it (the
    `loaded` classifier when it is that version, else loaded from the registry)."""
    version = prediction["model_version"]
    classifier = loaded if loaded is not None and loaded_version == version else None
    if classifier is None:
        folder = registry / version
        if not folder.is_dir():
            raise NoEvidenceError(f"model {version} of dataset {prediction['dataset']!r} is no longer in {registry}")
        classifier = classifier_of_version(folder)
    if classifier.evidence_index is None:
        raise NoEvidenceError(f"model {version} was exported without an evidence index; train it again")
    return classifier.nearest_examples([prediction["text"]], k)[0]


async def served_evidence(model: ServedModel, version: str, texts: list[str], k: int) -> list[list[dict]]:
    """The evidence of the texts a classifier just answered, from the same model version."""
    current, classifier = model.holder.current
    if current != version:
        raise RequestError("the production model changed while answering; send the request again", status=409)
    if classifier.evidence_index is None:
        raise RequestError(f"model {version} was exported without an evidence index; train it again", status=409)
    return await asyncio.to_thread(classifier.evidence, texts, k)


def add_evidence_routes(
    app: FastAPI, served: ServedModels, appender: DeltaAppender, token: str | None, recent: RecentPredictions
) -> None:
    """GET /predictions/{id}/evidence?k=5: a logged prediction's nearest training examples."""

    @app.get("/predictions/{prediction_id}/evidence")
    async def evidence(request: Request, prediction_id: str, k: str = "5") -> dict:
        require_token(request.headers.get("authorization"), token)
        count = evidence_count(k, "k")
        if appender.lake is None:
            raise RequestError("this service keeps no prediction log (started without a lake)", status=404)
        prediction = await asyncio.to_thread(logged_prediction, appender.lake, prediction_id)
        if prediction is None and not recent.unknown([prediction_id]):
            await asyncio.to_thread(appender.flush)  # answered moments ago: its row may still be spooled
            prediction = await asyncio.to_thread(logged_prediction, appender.lake, prediction_id)
        if prediction is None:
            raise RequestError(f"no logged prediction has the id {prediction_id!r}", status=404)
        model = await served.lookup(prediction["dataset"])
        if model.family != CLASSIFIER:
            raise RequestError(f"dataset {model.dataset!r} is served by a generative model", status=404)
        version, loaded = model.holder.current
        try:
            cited = await asyncio.to_thread(
                prediction_evidence, prediction, model.holder.model_root, count, loaded=loaded, loaded_version=version
            )
        except NoEvidenceError as error:
            raise RequestError(str(error), status=404) from None
        return {**prediction, "evidence": cited}
