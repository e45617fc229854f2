"""The same Classifier served by LitServe with dynamic batching: the serving benchmark's strong anchor."""

from __future__ import annotations

from pathlib import Path

import litserve as ls

from trainers.kinds import load_classifier


class ClassifierAPI(ls.LitAPI):
    """One text per request; LitServe batches concurrent requests into one `predict` call."""

    def __init__(self, model: str, **batching) -> None:
        super().__init__(**batching)
        self.model = model

    def setup(self, device: str) -> None:
        self.classifier = load_classifier(Path(self.model))

    def decode_request(self, request: dict) -> str:
        return request["texts"][0]

    def predict(self, texts: list[str]) -> list[dict]:
        return [{"label": p.label, "score": p.score} for p in self.classifier.predict(texts, batch_size=len(texts))]

    def encode_response(self, output: dict) -> dict:
        return {"model_version": "litserve", "predictions": [output]}


def serve_litserve(model: str, port: int, max_batch_size: int = 64, batch_timeout: float = 0.005) -> None:
    """Serve `model` on 127.0.0.1:`port` until stopped."""
    api = ClassifierAPI(model, max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")
