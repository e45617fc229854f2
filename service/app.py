"""`refinery serve`: the production model of every dataset as an HTTP service (FastAPI on uvicorn).

POST /predict/{dataset} (or /predict when one dataset is served) batches concurrent requests into one
forward pass (dynamic batching), GET /health, GET /metrics (Prometheus), POST /feedback. A model is
swapped when its `production` alias moves: the new one loads beside the old one, which keeps answering
until the swap, so no request fails.
Predictions and feedback are appended to Delta tables by a background writer, off the request path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from contracts.model_folder import GENERATOR
from contracts.tables import FEEDBACK, SERVICE_PREDICTIONS
from service.access import TOKEN_VARIABLE, allowed_hosts, require_known_host, require_metrics_access, require_token
from service.batcher import MicroBatcher, ServiceBusyError
from service.evidence import add_evidence_routes, served_evidence
from service.generation import GenerationBatcher, GeneratorHolder
from service.generation_routes import add_generation_routes, masked
from service.holder import ModelHolder
from service.logbook import DeltaAppender, default_spool_root
from service.prometheus import ServiceMetrics
from service.request_schemas import FeedbackBody, PredictBody, json_body_schema
from service.requests import (
    RecentPredictions,
    RequestError,
    parse_feedback_request,
    parse_predict_request,
    read_json_body,
)
from service.served import ServedModel, ServedModels
from trainers.inference import Prediction
from trainers.kinds import kind_of
from trainers.registry import resolve_alias

LOG = logging.getLogger("refinery.service")


def model_maker(metrics: ServiceMetrics, quantize: bool, max_wait_ms: float) -> Callable[[str, Path], ServedModel]:
    """What loads one dataset's production model: a classifier, or a generator when its card says causal LM."""
    serving: dict[str, str] = {}

    def make(dataset: str, registry: Path) -> ServedModel:
        def reloaded(version: str) -> None:
            metrics.reloads.inc()
            if dataset in serving:
                metrics.model.remove(dataset, serving[dataset])
            serving[dataset] = version
            metrics.model.labels(dataset, version).set(1)

        kind = kind_of(resolve_alias(registry))
        if kind.family == GENERATOR:
            generator = GeneratorHolder(registry, on_reload=reloaded)
            return ServedModel(dataset, generator, GenerationBatcher(generator), kind)
        holder = ModelHolder(registry, on_reload=reloaded, quantize=quantize)
        batcher = MicroBatcher(holder, max_wait_ms=max_wait_ms, observe=metrics.batch_size.observe)
        return ServedModel(dataset, holder, batcher, kind)

    return make


def build_app(
    models: Path,
    lake: Path | str | None = None,
    token: str | None = None,
    *,
    max_wait_ms: float = 5.0,
    quantize: bool | None = None,
    hosts: frozenset[str] | None = None,
) -> FastAPI:
    """The FastAPI app for the production models under `models` (a home's `models/`, or one registry);
    `lake` (a folder or an object-store URI) receives predictions and feedback.

    `quantize` (default: on CPU) serves int8 dynamically quantized Linear layers; `hosts` are the names besides
    loopback that requests may carry in their Host header (default: REFINERY_ALLOWED_HOSTS).
    """
    import torch

    quantize = (not torch.cuda.is_available()) if quantize is None else quantize
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
    metrics = ServiceMetrics()

    make = model_maker(metrics, quantize, max_wait_ms)
    served = ServedModels(models, make)
    home = Path(models).resolve().parent  # an object-store lake's spool: in the home the models are served from
    appender = DeltaAppender(lake, spool_root=default_spool_root(lake, remote_home=home) if lake else None)
    if appender.spool is not None:
        metrics.watch_spool(appender.spool)

    closing = threading.Lock()
    closed: list[bool] = []

    def close() -> None:  # once: the lifespan's shutdown and a test's ServiceThread both call it
        with closing:
            if closed:
                return
            closed.append(True)
            try:
                served.close()
            finally:
                appender.close()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # Here, not after uvicorn returns: on SIGTERM uvicorn shuts down, then raises the signal again, and the
        # process ends before any code after `uvicorn.run` — the buffered predictions would be lost.
        close()

    # /openapi.json is served by a route of ours, behind the token like every other route
    app = FastAPI(title="Refinery model service", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.served, app.state.appender = served, appender
    add_measurement(app, metrics, allowed_hosts() if hosts is None else hosts)
    add_error_handlers(app)
    add_routes(app, served, appender, metrics, token)
    app.state.close = close
    return app


def route_of(request: Request) -> str:
    """The path template of the route that served a request, or `unmatched`."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def add_measurement(app: FastAPI, metrics: ServiceMetrics, hosts: frozenset[str]) -> None:
    """Refuse unknown Host names, count every request by route and status and time it; an unexpected error is a
    counted 500, logged with its traceback."""

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        try:
            require_known_host(request.headers.get("host"), hosts)
            response = await call_next(request)
        except RequestError as refused:
            metrics.requests.labels(route_of(request), str(refused.status)).inc()
            return error_response(request, str(refused), refused.status)
        except Exception:
            LOG.exception("%s %s failed", request.method, request.url.path)
            metrics.errors.inc()
            metrics.requests.labels(route_of(request), "500").inc()
            return JSONResponse({"error": "internal error; see the service log"}, status_code=500)
        endpoint = route_of(request)  # the route's template: unknown paths share one label, the series stay few
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response


OPENAI_ERROR_TYPES = {  # status -> OpenAI's error type, for the /v1/ routes' clients
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


def error_response(
    request: Request, message: str, status: int, headers: dict | None = None, param: str | None = None
) -> JSONResponse:
    """A refusal: `{"error": message}`, or OpenAI's error object on the OpenAI-compatible /v1/ routes."""
    if not request.url.path.startswith("/v1/"):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": param, "code": None if status != 401 else "invalid_api_key"}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Refusals, unknown routes and wrong methods as JSON errors with their status."""

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return error_response(request, str(error), error.status, error.headers, error.param)

    @app.exception_handler(ServiceBusyError)
    async def busy(request: Request, error: ServiceBusyError) -> JSONResponse:
        return error_response(request, f"busy: {error}; retry shortly", 503, {"Retry-After": "1"})

    @app.exception_handler(404)
    async def not_found(request: Request, error: Exception) -> JSONResponse:
        return error_response(request, f"no route {request.method} {request.url.path}", 404)

    @app.exception_handler(405)
    async def not_allowed(request: Request, error: Exception) -> JSONResponse:
        return error_response(request, f"{request.method} is not allowed on {request.url.path}", 405)


def answer(prediction_id: str, prediction: Prediction) -> dict[str, object]:
    """One text's entry in a /predict response: its label and score, or why the model did not look at it."""
    if prediction.refused is not None:
        return {"id": prediction_id, "label": None, "score": None, "refused": prediction.refused}
    answered = {"id": prediction_id, "label": prediction.label, "score": prediction.score}
    if prediction.tasks:
        answered["tasks"] = {task: {"label": p.label, "score": p.score} for task, p in prediction.tasks.items()}
    return answered


def model_health(model: ServedModel) -> dict[str, object]:
    """What /health says of one served model."""
    if model.family == GENERATOR:
        return {"model_version": model.holder.version, "model_kind": model.kind.name}
    classifier = model.holder.classifier
    recipe = classifier.recipe
    return {
        "model_version": model.holder.version,
        "precision": classifier.precision,
        "text_recipe": recipe.digest if recipe else None,
    }


def add_routes(
    app: FastAPI, served: ServedModels, appender: DeltaAppender, metrics: ServiceMetrics, token: str | None
) -> None:
    """/health and /metrics, then /predict and /feedback."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/health")
    async def health() -> dict:
        models = {name: model_health(model) for name, model in served.served.items()}
        only = next(iter(models.values())) if len(models) == 1 else {}  # one dataset: its fields at the top too
        failed = {"failed": dict(served.failed)} if served.failed else {}
        return {"status": "degraded" if failed else "ok", **only, "models": models, **failed}

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        client = request.client.host if request.client else None
        require_metrics_access(client, request.headers.get("authorization"), token)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> dict:
        require_token(request.headers.get("authorization"), token)
        return app.openapi()

    recent = RecentPredictions()  # the ids /feedback may name: predictions and generations this service answered
    add_model_routes(app, served, appender, metrics, token, recent)
    add_generation_routes(app, served, appender, metrics, token, recent)
    add_evidence_routes(app, served, appender, token, recent)


def feedback_row(item: dict[str, str]) -> dict[str, object]:
    """A /feedback item as the log keeps it: every kind's column (one flush may mix labels, ratings and
    corrections, and a batch takes its columns from its rows) and a correction's personal data masked."""
    correction = item.get("correction")
    return {
        "prediction_id": item["prediction_id"],
        "label": item.get("label"),
        "rating": item.get("rating"),
        "correction": masked(correction) if correction is not None else None,
        "received_at": time.time(),
    }


def add_model_routes(
    app: FastAPI,
    served: ServedModels,
    appender: DeltaAppender,
    metrics: ServiceMetrics,
    token: str | None,
    recent: RecentPredictions,
) -> None:
    """/predict and /feedback: JSON bodies within their size limit, the token when one is set."""

    @app.post("/predict", openapi_extra=json_body_schema(PredictBody))
    async def predict_only(request: Request):
        return await predict(request, None)

    @app.post("/predict/{dataset}", openapi_extra=json_body_schema(PredictBody))
    async def predict_dataset(request: Request, dataset: str):
        return await predict(request, dataset)

    async def predict(request: Request, dataset: str | None):
        require_token(request.headers.get("authorization"), token)
        model = await served.lookup(dataset)
        if model.family == GENERATOR:
            raise RequestError(f"dataset {model.dataset!r} is served by a generative model: POST /generate")
        texts, explain = parse_predict_request(await read_json_body(request))
        version, predictions = await model.batcher.predict(texts)
        evidence = await served_evidence(model, version, texts, explain) if explain else None
        now = time.time()
        ids = [uuid.uuid4().hex for _ in texts]
        answered = [(i, p) for i, p in zip(ids, predictions, strict=True) if p.refused is None]
        for _, prediction in answered:
            metrics.predictions.labels(prediction.label).inc()
        metrics.refused.inc(len(predictions) - len(answered))
        recent.add([i for i, _ in answered])
        # Only the prepared (masked) text is logged: what the pipeline masks on the way in stays masked.
        appender.add(
            SERVICE_PREDICTIONS,
            [
                {
                    "prediction_id": i,
                    "predicted_at": now,
                    "dataset": model.dataset,
                    "model_version": version,
                    "text": p.text,
                    "label": p.label,
                    "score": p.score,
                }
                for i, p in answered
            ],
        )
        answers = [answer(i, p) for i, p in zip(ids, predictions, strict=True)]
        for answered_one, cited in zip(answers, evidence or [], strict=False):
            answered_one["evidence"] = cited
        return {"dataset": model.dataset, "model_version": version, "predictions": answers}

    @app.post("/feedback", openapi_extra=json_body_schema(FeedbackBody))
    async def feedback(request: Request):
        require_token(request.headers.get("authorization"), token)
        items = parse_feedback_request(await read_json_body(request))
        unknown = recent.unknown([item["prediction_id"] for item in items])
        if unknown:
            raise RequestError(f"{len(unknown)} prediction ids this service did not answer, e.g. {unknown[0]!r}")
        mismatched = recent.mismatched(items)
        if mismatched:
            raise RequestError(f"{len(mismatched)} feedback items do not fit their ids, e.g. {mismatched[0]}")
        appender.add(FEEDBACK, [feedback_row(item) for item in items])
        return {"accepted": len(items)}
