"""Vectorised language identification decides as py3langid does, text for text."""

from __future__ import annotations

import pytest

from assets.text.language import identify

TEXTS = [
    "The printer on the third floor keeps jamming whenever I print double-sided.",
    "Ceci est une phrase en français, écrite pour vérifier la détection.",
    "Dies ist ein deutscher Satz über Katzen und Hunde im Garten.",
    "Это предложение написано на русском языке для проверки.",
    "これは言語判定のための日本語の文です。",
    "Esta es una frase en español sobre el tiempo de hoy.",
    "HELLO THIS IS ALL CAPITALS FROM AN ANGRY CUSTOMER",
    "12345 67 !!!",
    "",
    "ok",
    "vpn",
    "<EMAIL> <PHONE>",
    "Mixed English und Deutsch in one ticket bitte",
    "ein" * 200,
]


def test_each_text_gets_the_language_and_confidence_py3langid_gives_it() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    languages, confidences = identify(TEXTS)
    for text, language, confidence in zip(TEXTS, languages, confidences, strict=True):
        expected, expected_confidence = reference.classify(text)
        assert (language, confidence) == (expected, pytest.approx(expected_confidence, abs=1e-4)), text


def test_no_texts_is_no_languages() -> None:
    assert identify([]) == ([], [])
