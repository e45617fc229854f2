"""`python -m benchmarks.preprocessing [DOCS]`: the preprocessing stage against a naive pandas loop and
spaCy's tokenizer alone, on the same generated ticket and e-mail text, in one process.

(a) Refinery: `clean_version` (NFKC, markup, replies, signatures, PII masking, row rules, quality
    heuristics, exact and near dedup) then `tokenize_documents` (tokens, lemmas, stems), as the assets
    run them. The language filter is switched off here: it is not among the steps compared.
(b) Naive: pandas `.apply` per row with `re`, spaCy (`nlp(text)` with the lookup lemmatizer) and NLTK.
(c) spaCy's tokenizer alone, `nlp.tokenizer.pipe` on one core, over the raw texts.
(d) Real prose: up to 60,000 paragraphs of the documentation files shipped inside the installed packages,
    through `clean_version` with every default filter on (language identification included) and
    `tokenize_documents`, against (c) on the same paragraphs: `ratio_to_tokenizer_only_prose`; and
    `clean_version` alone against datatrove's Gopher quality filter and MinHash near-dedup on the same
    paragraphs, 2 worker processes (`benchmarks/datatrove_pipeline.py`): `ratio_to_datatrove`.
"""

from __future__ import annotations

import html
import random
import re
import sys
import unicodedata

import polars as pl

from assets.demo.tickets import generate_tickets
from benchmarks.common import result_line, timed

REPLY = "\n\nOn {day}, IT Support <it@corp.example> wrote:\n> Could you restart and try again?\n> Thanks"
SIGNATURE = "\n-- \n{name} | {team} | +44 20 7946 {tail}"


def build_corpus(documents: int, seed: int = 23) -> pl.DataFrame:
    """Tickets, a third of them as e-mails with quoted replies, signatures and HTML."""
    generated, _ = generate_tickets(documents, seed)
    base = [r for r in generated if 3 <= len(r["body"].strip()) <= 2000]  # the generator's absurd lengths stay out
    rng = random.Random(seed)
    texts, labels = [], []
    for record in base[:documents]:
        text = record["body"]
        roll = rng.random()
        if roll < 0.15:
            text += REPLY.format(day=rng.choice(["Mon, 3 Nov", "Tue, 4 Nov", "Fri, 7 Nov"]))
        elif roll < 0.3:
            name, team = rng.choice(["Anna", "Marco", "Priya"]), rng.choice(["Finance", "Sales"])
            text = f"<div>{text}</div>" + SIGNATURE.format(name=name, team=team, tail=rng.randint(1000, 9999))
        texts.append(text)
        labels.append(record["category"])
    count = len(texts)
    return pl.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(count)],
            "source_id": [None] * count,
            "text": texts,
            "label": labels,
            "source": ["bench.csv"] * count,
            "source_row": list(range(2, count + 2)),
        },
        schema_overrides={"source_id": pl.String},
    )


def prose_corpus(documents: int, seed: int = 29) -> pl.DataFrame:
    """Real English prose: paragraphs of the documentation files shipped inside the installed packages."""
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["purelib"])
    paragraphs: set[str] = set()
    for pattern in ("**/*.md", "**/*.rst", "**/*.txt", "**/METADATA"):
        for path in sorted(root.glob(pattern)):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for paragraph in re.split(r"\n\s*\n", text):
                words = paragraph.split()
                joined = " ".join(words)
                if 8 <= len(words) <= 150 and sum(c.isalpha() for c in joined) > 0.7 * len(joined):
                    paragraphs.add(joined)
    chosen = sorted(paragraphs)
    random.Random(seed).shuffle(chosen)
    texts = chosen[:documents]
    count = len(texts)
    return pl.DataFrame(
        {
            "doc_id": [f"p{i}" for i in range(count)],
            "source_id": [None] * count,
            "text": texts,
            "label": ["prose"] * count,
            "source": ["docs"] * count,
            "source_row": list(range(count)),
        },
        schema_overrides={"source_id": pl.String},
    )


def refinery_clean(corpus: pl.DataFrame) -> pl.DataFrame:
    """clean_version with every default filter, language identification included: the documents kept."""
    from assets.text.cleaning import clean_version
    from rules import load_rule_book

    return clean_version(corpus, load_rule_book().for_asset("clean_documents")).kept


def refinery_tokenize(kept: pl.DataFrame) -> int:
    from assets.text.tokenize import tokenize_documents
    from recipe.words import load_tokenizer

    return int(tokenize_documents(kept, load_tokenizer("en"))["token_count"].sum())


def datatrove_same_filters(corpus: pl.DataFrame, workers: int = 2) -> tuple[float, int]:
    """Seconds and documents kept by datatrove's Gopher quality + MinHash dedup (pip install datatrove)."""
    import tempfile
    from pathlib import Path

    from assets.text.dedup import NearDuplicateOptions
    from benchmarks.datatrove_pipeline import run_datatrove, write_shards
    from rules import load_rule_book

    quality, near = load_rule_book().for_asset("clean_documents").quality, NearDuplicateOptions()
    with tempfile.TemporaryDirectory() as scratch:
        shards = write_shards(corpus["text"].to_list(), Path(scratch) / "input", workers)
        return timed(
            run_datatrove, shards, Path(scratch) / "work", quality, workers, near.shingle_size, near.bands, near.rows
        )


def prose_results(documents: int = 60_000) -> dict[str, float]:
    """Real prose with every default filter: against spaCy's tokenizer alone and against datatrove."""
    prose = prose_corpus(documents)
    prose_words = int(prose["text"].str.split(" ").list.len().sum())
    refinery_tokenize(refinery_clean(prose.head(2000)))  # load the models and tables once, outside the timings
    clean_s, kept = timed(refinery_clean, prose)
    tokenize_s, _ = timed(refinery_tokenize, kept)
    tokenizer_s, _ = timed(tokenizer_only, prose)
    datatrove_s, datatrove_kept = datatrove_same_filters(prose)
    print(
        f"prose: {prose.height} documents, {prose_words} words; every filter on {clean_s:.2f}s (kept {kept.height}) "
        f"+ tokenize {tokenize_s:.2f}s, tokenizer only {tokenizer_s:.2f}s, datatrove {datatrove_s:.2f}s "
        f"(kept {datatrove_kept})",
        flush=True,
    )
    return {
        "prose_words_per_s": round(prose_words / (clean_s + tokenize_s)),
        "ratio_to_tokenizer_only_prose": tokenizer_s / (clean_s + tokenize_s),
        "ratio_to_datatrove": datatrove_s / clean_s,
    }


def refinery(corpus: pl.DataFrame) -> int:
    from assets.text.cleaning import clean_version
    from assets.text.tokenize import tokenize_documents
    from recipe.words import load_tokenizer
    from rules import load_rule_book
    from rules.compiler import RuleSet

    rules = load_rule_book().for_asset("clean_documents")
    quality = {k: v for k, v in rules.quality.items() if k not in ("languages", "min_language_confidence")}
    rules = RuleSet(rules.asset, rules.path, rules.schema, rules.row_rules, rules.dataset_rules, rules.pii, quality)
    cleaned = clean_version(corpus, rules)
    tokenized = tokenize_documents(cleaned.kept, load_tokenizer("en"))
    return int(tokenized["token_count"].sum())


def naive(corpus: pl.DataFrame) -> int:
    import spacy
    from nltk.stem.snowball import SnowballStemmer

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    stemmer = SnowballStemmer("english")
    email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
    phone = re.compile(r"\+?\d[\d ()./-]{7,}\d")

    def clean(text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = re.split(r"\n\s*On .{1,200}wrote:|\n-- ?\n", text)[0]
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        text = phone.sub("<PHONE>", email.sub("<EMAIL>", text))
        return " ".join(text.split())

    def analyse(text: str) -> tuple[list[str], list[str], list[str]]:
        doc = nlp(text)
        return [t.text for t in doc], [t.lemma_.lower() for t in doc], [stemmer.stem(t.text.lower()) for t in doc]

    frame = corpus.to_pandas()
    frame["clean"] = frame["text"].apply(clean)
    frame = frame[frame["clean"].str.len().between(3, 2000)].drop_duplicates("clean")
    analysed = frame["clean"].apply(analyse)
    return int(analysed.apply(lambda row: len(row[0])).sum())


def tokenizer_only(corpus: pl.DataFrame) -> int:
    import spacy

    nlp = spacy.blank("en")
    return sum(len(doc) for doc in nlp.tokenizer.pipe(corpus["text"].to_list(), batch_size=1000))


def main(documents: int = 150_000) -> None:
    corpus = build_corpus(documents)
    words = int(corpus["text"].str.split(" ").list.len().sum())
    print(f"{corpus.height} documents, {words} words", flush=True)
    refinery(corpus.head(2000))  # load the tokenizer, lemma tables and py3langid once, outside the timings
    ours, _ = timed(refinery, corpus)
    print(f"refinery: {ours:.2f}s", flush=True)
    baseline, _ = timed(naive, corpus)
    print(f"naive:    {baseline:.2f}s", flush=True)
    tokenizer, _ = timed(tokenizer_only, corpus)
    print(f"tokenizer only: {tokenizer:.2f}s", flush=True)
    rate, naive_rate, tokenizer_rate = words / ours, words / baseline, words / tokenizer
    print(
        result_line(
            **prose_results(),
            words_per_s=round(rate),
            naive_words_per_s=round(naive_rate),
            tokenizer_only_words_per_s=round(tokenizer_rate),
            speedup_vs_naive=rate / naive_rate,
            ratio_to_tokenizer_only=rate / tokenizer_rate,
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150_000)
