"""Benchmark: short answer phrases (qa/phrases.py) against SQuAD gold answers, and their latency.

    python -m eval.bench_phrases [--squad ../shared/data/squad-train-pages/train.json] [--limit N]

The SQuAD-format training pool is split into two folds by page title (a stable hash of the title):
fold A is the one the rules were tuned on, fold B is held out. For every answerable question the
extractor gets the one context sentence that holds the gold answer's start. Printed per fold:
factoid share, coverage (share of factoid questions given a phrase), exact match, token F1 and
"contains" (phrase holds a gold answer or lies inside one) over the phrases returned, and EM over
all factoid questions; per question word as well. Then the latency of one ``extract`` call on one
and on three sentences (p50, p95 in ms).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import string
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from eval.metrics import percentile
from qa.phrases import Phrase, PhraseExtractor, is_factoid

DEFAULT_SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad-train-pages" / "train.json"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_WH_WORD = re.compile(r"\b(who|whom|whose|what|which|when|where|how)\b", re.I)


@dataclass(frozen=True)
class Item:
    title: str
    question: str
    sentence: str
    neighbours: tuple[str, ...]  # other sentences of the same paragraph, for the 3-sentence latency
    answers: tuple[str, ...]


def fold_of(title: str) -> str:
    """A for titles whose sha256 starts with an even nibble, B otherwise (stable across runs)."""
    return "A" if int(hashlib.sha256(title.encode()).hexdigest()[0], 16) % 2 == 0 else "B"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans by punctuation followed by a capital or a digit (good enough for Wikipedia)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start() + len(match.group(0).rstrip())))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def load_items(path: Path) -> tuple[list[Item], int]:
    """Answerable questions with their gold sentence; also how many were skipped (answer across sentences)."""
    data = json.loads(path.read_text())["data"]
    items: list[Item] = []
    seen: set[tuple[str, str]] = set()
    skipped = 0
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = split_sentences(context)
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                key = (context, qa["question"])
                if key in seen:
                    continue
                seen.add(key)
                gold = qa["answers"][0]
                start, end = gold["answer_start"], gold["answer_start"] + len(gold["text"])
                where = [i for i, (s, e) in enumerate(spans) if s <= start < e]
                if not where or end > spans[where[0]][1]:
                    skipped += 1
                    continue
                s, e = spans[where[0]]
                others = tuple(context[a:b].strip() for i, (a, b) in enumerate(spans) if i != where[0])
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                items.append(Item(article["title"], qa["question"], context[s:e], others, answers))
    return items, skipped


def normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Outcome:
    word: str  # the question word ("what", "how many", ...)
    score: float | None  # None: no phrase returned
    exact: bool = False
    exact_without_unit: bool = False  # exact once a trailing word the question already says is dropped
    f1: float = 0.0
    contains: bool = False


def judge(question: str, word: str, phrase: Phrase | None, answers: tuple[str, ...]) -> Outcome:
    if phrase is None:
        return Outcome(word, None)
    pred = normalize(phrase.text)
    golds = [normalize(a) for a in answers]
    words = pred.split()
    bare = " ".join(words[:-1]) if len(words) > 1 and words[-1] in normalize(question).split() else pred
    return Outcome(
        word,
        phrase.score,
        exact=pred in golds,
        exact_without_unit=pred in golds or bare in golds,
        f1=max(token_f1(phrase.text, a) for a in answers),
        contains=any(pred and (g in pred or pred in g) for g in golds),
    )


def evaluate(extractor: PhraseExtractor, items: list[Item], label: str) -> list[Outcome]:
    outcomes = []
    for item in tqdm(items, desc=f"fold {label}", file=sys.stderr, leave=False):
        if not is_factoid(item.question):
            continue
        match = _WH_WORD.search(item.question)
        word = match.group(1).lower() if match else "?"
        if word == "how":
            after = item.question.lower().split("how", 1)[1].split()
            word = f"how {after[0] if after else ''}"
        (phrase,) = extractor.extract(item.question, [item.sentence])
        outcomes.append(judge(item.question, word, phrase, item.answers))
    return outcomes


def share(part: int | float, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def report(label: str, items: list[Item], outcomes: list[Outcome], *, min_score: float) -> None:
    returned = [o for o in outcomes if o.score is not None]
    n = len(returned)
    print(
        f"fold {label}: {len(items)} answerable, {len(outcomes)} factoid ({share(len(outcomes), len(items))}), "
        f"coverage {share(n, len(outcomes))} (phrases scoring below {min_score} are not returned)"
    )
    print(
        f"  when a phrase is returned: EM {share(sum(o.exact for o in returned), n)}"
        f"  EM unit dropped {share(sum(o.exact_without_unit for o in returned), n)}"
        f"  F1 {share(sum(o.f1 for o in returned), n)}  contains {share(sum(o.contains for o in returned), n)}"
    )
    print(f"  EM over all factoid questions {share(sum(o.exact for o in returned), len(outcomes))}")
    for cut in [c for c in (0.3, 0.4, 0.5, 0.55, 0.6, 0.7) if c > min_score]:
        kept = [o for o in returned if o.score is not None and o.score >= cut]
        print(
            f"  score >= {cut}: coverage {share(len(kept), len(outcomes))}"
            f"  EM {share(sum(o.exact for o in kept), len(kept))}  F1 {share(sum(o.f1 for o in kept), len(kept))}"
        )
    by_word: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_word[o.word].append(o)
    for word, group in sorted(by_word.items(), key=lambda kv: -len(kv[1]))[:10]:
        got = [o for o in group if o.score is not None]
        print(
            f"    {word:<10} n={len(group):<5} coverage {share(len(got), len(group)):>6}"
            f"  EM {share(sum(o.exact for o in got), len(got)):>6}  F1 {share(sum(o.f1 for o in got), len(got)):>6}"
        )


def latency(
    extractor: PhraseExtractor, items: list[Item], *, sentences: int, calls: int
) -> tuple[float, float, float, float]:
    """Wall-clock p50/p95 of one ``extract`` call, then the same for the CPU time this process spent
    (on a shared machine the wall clock also counts time spent waiting for a core)."""
    usable = [i for i in items if is_factoid(i.question) and len(i.neighbours) >= sentences - 1][:calls]
    wall, cpu = [], []
    for item in usable:
        batch = [item.sentence, *item.neighbours[: sentences - 1]]
        t0, c0 = time.perf_counter(), time.process_time()
        extractor.extract(item.question, batch)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return (
        percentile(wall, 50) or 0.0,
        percentile(wall, 95) or 0.0,
        percentile(cpu, 50) or 0.0,
        percentile(cpu, 95) or 0.0,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--limit", type=int, default=None, help="questions per fold (default: all)")
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--folds", default="AB", help="which folds to score (A: tuning, B: held out)")
    parser.add_argument("--min-score", type=float, default=None, help="override the confidence cut (tuning only)")
    args = parser.parse_args(argv)

    items, skipped = load_items(args.squad)
    t0 = time.perf_counter()
    extractor = PhraseExtractor()
    if args.min_score is not None:
        extractor.min_score = args.min_score
    print(f"model loaded and verified in {time.perf_counter() - t0:.1f} s; pipeline {extractor.nlp.pipe_names}")
    print(f"{len(items)} answerable questions ({skipped} skipped: answer spans two sentences)")
    for label in args.folds:
        fold = [i for i in items if fold_of(i.title) == label][: args.limit]
        report(
            f"{label} ({'tuning' if label == 'A' else 'held out'})",
            fold,
            evaluate(extractor, fold, label),
            min_score=extractor.min_score,
        )
    held_out = [i for i in items if fold_of(i.title) == "B"]
    extractor.extract("How many warm-up calls?", ["Ten warm-up calls were made."])
    for count in (1, 3):
        p50, p95, cpu50, cpu95 = latency(extractor, held_out, sentences=count, calls=args.latency_calls)
        print(
            f"latency, {count} sentence(s) per call: wall p50 {p50:.1f} ms  p95 {p95:.1f} ms;"
            f" CPU p50 {cpu50:.1f} ms  p95 {cpu95:.1f} ms ({args.latency_calls} calls, held-out questions)"
        )


if __name__ == "__main__":
    main()
