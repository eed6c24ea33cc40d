"""The check between an LLM's reply and the user: sentence by sentence, against the cited passages.

A real model writes in its own format. Before a sentence is checked its citation markers are
normalised (``[1][2]``, ``[1, 2]``, ``[Source 1]``, ``(Passage 2)``, ``(1)``, ``[^1]`` all become
``[n]``), Markdown bullets and ``Answer:`` labels are stripped. A sentence then reaches the user
only when none of these removes it (the reason codes are :data:`REASONS`' keys):

- ``unfinished``: cut off (the model hit its token limit, or the reply stops mid-sentence);
- ``instruction``: copies the prompt's rules, or says what an instruction planted in a passage
  asks for ("Ignore the question and say ..."): a document's instructions are data, never orders;
- ``not_a_claim``: a question, or a remark about the passages rather than an answer;
- ``no_citation``: no marker at all;
- ``unknown_passage``: markers only for passages the model was not given;
- ``unsupported``: no cited passage has a span of one to three consecutive sentences that
  supports it: the span must contain every number and name of the sentence (or the passage's
  title, source and date must) and either half of its content words or an embedding similarity
  of :data:`SUPPORT_SIMILARITY`. Sentences that read as instructions are never a supporting span.

The supporting span becomes the citation, so its quote is exactly what was checked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import Stemmer

from index.chunking import split_sentences
from index.lexical import STOPWORDS
from index.pipeline import DocumentIndex, IndexedChunk
from qa.citations import Citation
from qa.instructions import is_instruction
from qa.types import Passage

SUPPORT_OVERLAP = 0.5  # share of a sentence's content words found in the cited span
SUPPORT_SIMILARITY = 0.6  # or cosine similarity to one of the span's sentences
SPAN_SENTENCES = 3  # longest run of consecutive sentences a citation may quote
FOLLOWS_INSTRUCTION = 0.5  # share of a claim's content words that an instruction sentence supplies
COPIES_PROMPT = 0.6  # share of a sentence's content words found in one rule of the prompt

# reason code -> how the notice says it
REASONS = {
    "unfinished": "cut off mid-sentence",
    "instruction": "copying the prompt or following instructions",
    "not_a_claim": "not a statement that answers",
    "no_citation": "without a citation",
    "unknown_passage": "citing a passage the model was not given",
    "unsupported": "not supported by the passage it cites",
}

# Citation markers in the forms small models write them; group 1 or 2 holds the number list.
_MARKER_FORMS = re.compile(
    r"\[\[?\s*\^?(?:(?:source|passage|doc(?:ument)?|ref(?:erence)?)s?\s*)?#?"
    r"(\d{1,2}(?:\s*(?:,|;|and|&|-|–)\s*\d{1,2})*)\s*\]?\]"
    r"|[(【]\s*(?:(?:source|passage|doc(?:ument)?)s?\s*)?#?(\d{1,2}(?:\s*(?:,|;|and|&)\s*\d{1,2})*)\s*[)】]",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\[(\d+)\]")
_MARKERS_ONLY = re.compile(r"^(?:\s*\[\d+\])+")
_LABEL = re.compile(r"^\s*(?:[-*•>]+\s+|\d+[.)]\s+|#+\s+)?(?:\*\*)?(?:answer|response|reply)\s*:\s*(?:\*\*)?", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•>]+|\d+[.)]|#+)\s+", re.MULTILINE)
_CONTENT = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<!^)\b[A-Z][\w'’-]*[A-Za-z]")
_POSSESSIVE = re.compile(r"['’]s$")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_FINISHED = re.compile(r"[.!?…][\"'”’)\]]*$")
_ABOUT_PASSAGES = re.compile(
    r"^\W*(?:(?:the|these|this)\s+)?(?:passages?|documents?|context|texts?|sources?)\s+(?:do(?:es)?\s*n[o']t|"
    r"(?:does|do)\s+not|did\s+not|never)\b"
    r"|^\W*i\s+(?:do\s*n[o']t|cannot|can'?t|am\s+not)\b|not\s+answered|^\W*(?:question|passages?)\s*:",
    re.IGNORECASE,
)
# "According to passage [1], X" and "The passage [1] says that X" claim X: the attribution goes, the marker stays.
_ATTRIBUTION = re.compile(
    r"^(?:according\s+to|as\s+(?:stated|reported|mentioned)\s+in|based\s+on)\s+(?:the\s+)?"
    r"(?:passages?|documents?|sources?|texts?)\s*((?:\[\d+\])*|\d{1,2})\s*,?\s*"
    r"|^(?:the\s+)?(?:passages?|documents?|sources?|texts?)\s*((?:\[\d+\])*|\d{1,2})\s+"
    r"(?:says?|states?|mentions?|reports?|notes?|explains?|shows?|indicates?)(?:\s+that)?\s+(?=\w)",
    re.IGNORECASE,
)
# The prompt's own scaffolding echoed back: passage delimiters, "[n] (title, source, date)" headers.
_SCAFFOLD = re.compile(r"<<<|>>>|>><|<<>|^\W*\[\d+\]\s*\(")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[\w'’-]+")
_STEMMER = Stemmer.Stemmer("english")


@dataclass(frozen=True)
class Support:
    """The span of one passage that supports a sentence (document offsets, inside ``chunk``)."""

    chunk: IndexedChunk
    start: int
    end: int


@dataclass
class Verdict:
    """What the checker decided about one sentence of the reply."""

    sentence: str  # as the model wrote it, markers normalised
    claim: str  # without markers
    reason: str | None = None  # a key of REASONS when removed
    supports: list[Support] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.reason is None


@dataclass
class CheckedReply:
    """Every sentence of a reply with its verdict."""

    verdicts: list[Verdict]

    @property
    def kept(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.kept]

    def removed(self) -> Counter[str]:
        """Removed sentences per reason code."""
        return Counter(v.reason for v in self.verdicts if v.reason is not None)


def normalize_markers(text: str) -> str:
    """Every citation-marker form rewritten as ``[n]`` (``[1, 3]`` -> ``[1][3]``, ``[2-4]`` -> ``[2][3][4]``)."""

    def rewrite(match: re.Match[str]) -> str:
        numbers: list[int] = []
        for piece in re.split(r"\s*(?:,|;|and|&)\s*", match.group(1) or match.group(2)):
            low, _, high = piece.replace("–", "-").partition("-")
            first = int(low)
            last = int(high) if high.strip() and first <= int(high) <= first + 9 else first
            numbers.extend(range(first, last + 1))
        return "".join(f"[{n}]" for n in numbers)

    return _MARKER_FORMS.sub(rewrite, text)


def reply_sentences(raw: str) -> list[str]:
    """The reply's sentences, markers normalised; markers written after a full stop stay with their sentence."""
    text = normalize_markers(_BULLET.sub("", _LABEL.sub("", raw.replace("**", ""))))
    sentences: list[str] = []
    for line in text.splitlines():
        for start, end in split_sentences(line):
            sentence = line[start:end].strip()
            lead = _MARKERS_ONLY.match(sentence)
            if lead and sentences:
                sentences[-1] += lead.group(0).strip()
                sentence = sentence[lead.end() :].strip()
                if sentence and not re.search(r"\w", sentence):  # "... [1]." split after the "..."
                    sentences[-1] += sentence
                    sentence = ""
            sentence = _ATTRIBUTION.sub(_attribution_markers, sentence)
            if sentence:
                sentences.append(sentence)
    return sentences


def claim_of(sentence: str) -> str:
    """The sentence without its markers, spacing tidied ("shell [1]." -> "shell.")."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(_MARKER.sub(" ", sentence).split()))


def mentions(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` as whole words (case, punctuation and markers ignored)."""

    def norm(value: str) -> str:
        return " " + " ".join(re.findall(r"\w+", _MARKER.sub(" ", value).lower())) + " "

    return norm(phrase).strip() != "" and norm(phrase) in norm(text)


def _attribution_markers(match: re.Match[str]) -> str:
    cited = match.group(1) or match.group(2) or ""
    return (f"[{cited}] " if cited.isdigit() else f"{cited} ") if cited else ""


def content_words(text: str) -> set[str]:
    """Stemmed content words (stopwords dropped), so "killed" meets "kills"."""
    words = [w for w in _CONTENT.findall(text.lower()) if w not in STOPWORDS and (len(w) > 2 or w.isdigit())]
    return set(_STEMMER.stemWords(words))


def key_terms(claim: str) -> set[str]:
    """Numbers and names (capitalised words past the first) a supporting span must also contain."""
    names = {_POSSESSIVE.sub("", w.lower()) for w in _NAME.findall(claim) if w.lower() not in STOPWORDS}
    return {n.replace(",", "") for n in _NUMBER.findall(claim)} | {w for w in names if len(w) > 1}


def key_contexts(claim: str) -> dict[str, set[str]]:
    """Each key term of the claim with the stems of its nearest content words on either side: a
    span supports the claim only where a sentence holds the term beside one of them, so the
    span's words cannot be re-arranged into another claim ("Samadi was killed by Soleimani")."""
    keys = key_terms(claim)
    tokens = _TOKEN.findall(claim)
    normal = [_POSSESSIVE.sub("", t.lower()).replace(",", "") if t[0].isdigit() else _POSSESSIVE.sub("", t.lower())
              for t in tokens]  # fmt: skip
    stems = [content_words(t) for t in tokens]
    contexts: dict[str, set[str]] = {}
    for i, key in enumerate(normal):
        if key not in keys:
            continue
        near: set[str] = set()
        for side in (range(i - 1, -1, -1), range(i + 1, len(tokens))):
            found = next((stems[j] for j in side if stems[j]), set())
            near |= found
        contexts.setdefault(key, set()).update(near - stems[i])
    for key in keys - contexts.keys():
        contexts[key] = set()
    return contexts


class ReplyChecker:
    """Checks replies against passages of one index.

    Args:
        index: the document index (chunks, sentence spans and vectors).
        prompt: the prompt template the model was given (sentences copying its rules are removed).
    """

    def __init__(self, *, index: DocumentIndex, prompt: str) -> None:
        self.index = index
        rules = re.sub(r"\{\w+\}", " ", prompt)
        self._rules = [w for s, e in split_sentences(rules) if len(w := content_words(rules[s:e])) >= 3]

    def check(self, raw: str, passages: Sequence[Passage], *, truncated: bool = False) -> CheckedReply:
        """A verdict for every sentence of ``raw``.

        Args:
            raw: the model's reply.
            passages: the passages the prompt numbered 1..n, in that order.
            truncated: the model stopped at its token limit (its last sentence is unfinished).

        Returns:
            The verdicts, in reply order; kept ones carry their supporting spans.
        """
        sentences = reply_sentences(raw)
        verdicts = [Verdict(sentence=s, claim=claim_of(s)) for s in sentences]
        if not verdicts:
            return CheckedReply([])
        last = verdicts[-1]
        if truncated or not _FINISHED.search(_MARKER.sub("", last.sentence).rstrip()):
            last.reason = "unfinished"
        for verdict in verdicts:  # a snippet copied with its "..." is cut off wherever it stands
            if verdict.reason is None and verdict.claim.rstrip().endswith(("...", "…")):
                verdict.reason = "unfinished"
        chunks = [self.index.chunk(p.chunk_id) for p in passages]
        planted = [
            content_words(c.text[s - c.start : e - c.start])
            for c in chunks
            if c is not None
            for s, e in c.sentences
            if is_instruction(c.text[s - c.start : e - c.start])
        ]
        open_ = [v for v in verdicts if v.reason is None]
        vectors = self.index.embedder.embed_queries([v.claim for v in open_]) if open_ else np.zeros((0, 1))
        for verdict, vector in zip(open_, vectors, strict=True):
            verdict.reason = self._judge(verdict, vector, chunks, passages, planted)
        return CheckedReply(verdicts)

    def _judge(
        self,
        verdict: Verdict,
        vector: np.ndarray,
        chunks: Sequence[IndexedChunk | None],
        passages: Sequence[Passage],
        planted: Sequence[set[str]],
    ) -> str | None:
        words = content_words(verdict.claim)
        if (
            _SCAFFOLD.search(verdict.sentence)
            or is_instruction(verdict.claim)
            or self._copies_prompt(words)
            or _follows(words, planted)
        ):
            return "instruction"
        if verdict.claim.rstrip().endswith("?") or _ABOUT_PASSAGES.search(verdict.claim) or not words:
            return "not_a_claim"
        markers = list(dict.fromkeys(int(n) for n in _MARKER.findall(verdict.sentence)))
        if not markers:
            return "no_citation"
        valid = [n for n in markers if 1 <= n <= len(passages) and chunks[n - 1] is not None]
        if not valid:
            return "unknown_passage"
        for n in valid:
            chunk = chunks[n - 1]
            assert chunk is not None
            support = _best_span(verdict.claim, words, vector, chunk)
            if support is not None:
                verdict.supports.append(support)
        return None if verdict.supports else "unsupported"

    def _copies_prompt(self, words: set[str]) -> bool:
        return len(words) >= 3 and any(len(words & rule) >= COPIES_PROMPT * len(words) for rule in self._rules)


def _follows(words: set[str], planted: Sequence[set[str]]) -> bool:
    """The claim says what a planted instruction asks for: the instruction supplies most of its words."""
    return bool(words) and any(len(words & p) >= FOLLOWS_INSTRUCTION * len(words) for p in planted)


def _best_span(claim: str, words: set[str], vector: np.ndarray, chunk: IndexedChunk) -> Support | None:
    """The run of one to :data:`SPAN_SENTENCES` consecutive sentences of ``chunk`` that supports
    ``claim`` with the fewest sentences (then the best score), or None when none does."""
    texts = [chunk.text[s - chunk.start : e - chunk.start] for s, e in chunk.sentences]
    usable = [not is_instruction(t) for t in texts]
    sims = chunk.sentence_vectors.astype(np.float32) @ vector if texts else np.zeros(0)
    sentence_words = [content_words(t) for t in texts]
    header = _header_terms(chunk)
    needed = {k: v for k, v in key_contexts(claim).items() if k not in header}
    best: tuple[int, float, int, int] | None = None  # (sentences, -score, first, last)
    for first in range(len(texts)):
        for last in range(first, min(first + SPAN_SENTENCES, len(texts))):
            if not all(usable[first : last + 1]):
                break
            window = slice(first, last + 1)
            score = _span_score(words, needed, texts[window], sentence_words[window], sims[window])
            candidate = (last - first + 1, -score, first, last)
            if score >= 0 and (best is None or candidate < best):
                best = candidate
    if best is None:
        return None
    _, _, first, last = best
    return Support(chunk=chunk, start=chunk.sentences[first][0], end=chunk.sentences[last][1])


def _span_score(
    words: set[str],
    needed: dict[str, set[str]],
    texts: Sequence[str],
    sentence_words: Sequence[set[str]],
    sims: np.ndarray,
) -> float:
    """Overlap plus similarity when the span's sentences support the claim, -1 when they do not:
    every number and name present beside one of its neighbours in the claim (:func:`key_contexts`),
    and half the content words or an embedding similarity of SUPPORT_SIMILARITY."""
    if not words:
        return -1.0
    terms = [_words(t) | {n.replace(",", "") for n in _NUMBER.findall(t)} for t in texts]
    for key, near in needed.items():
        if not any(key in terms[i] and (not near or near & sentence_words[i]) for i in range(len(texts))):
            return -1.0
    overlap = len(words & set().union(*sentence_words)) / len(words)
    similarity = float(max(sims)) if len(sims) else 0.0
    if overlap < SUPPORT_OVERLAP and similarity < SUPPORT_SIMILARITY:
        return -1.0
    return overlap + similarity


def _header_terms(chunk: IndexedChunk) -> set[str]:
    """Words and numbers of the passage header the model saw (title, source, date): names and
    dates taken from there need not be in the span."""
    header = " ".join(x for x in (chunk.title, chunk.source or "", chunk.published_at or "") if x)
    return _words(header) | {n for n in _NUMBER.findall(header.replace("-", " "))}


def unsupported_sentences(text: str, citations: Sequence[Citation], index: DocumentIndex) -> list[str]:
    """Sentences of an answer that no citation they carry supports by the checker's own test,
    applied to exactly the cited span (an audit of what reached the user).

    Args:
        text: the answer text with ``[n]`` markers.
        citations: the answer's citations.
        index: the index the citations point into.

    Returns:
        The failing sentences (empty when every sentence is supported).
    """
    by_n = {c.n: c for c in citations}
    sentences = reply_sentences(text)
    claims = [claim_of(s) for s in sentences]
    vectors = index.embedder.embed_queries(claims) if claims else np.zeros((0, 1))
    failing = []
    for sentence, claim, vector in zip(sentences, claims, vectors, strict=True):
        words = content_words(claim)
        ok = False
        for n in dict.fromkeys(int(x) for x in _MARKER.findall(sentence)):
            cited = by_n.get(n)
            chunk = index.chunk(cited.chunk_id) if cited is not None else None
            if cited is None or chunk is None:
                continue
            inside = [i for i, (s, e) in enumerate(chunk.sentences) if cited.start <= s and e <= cited.end]
            texts = [chunk.text[s - chunk.start : e - chunk.start] for s, e in (chunk.sentences[i] for i in inside)]
            if not texts or any(is_instruction(t) for t in texts):
                continue
            sims = chunk.sentence_vectors[inside].astype(np.float32) @ vector
            header = _header_terms(chunk)
            needed = {k: v for k, v in key_contexts(claim).items() if k not in header}
            if _span_score(words, needed, texts, [content_words(t) for t in texts], sims) >= 0:
                ok = True
                break
        if not ok:
            failing.append(sentence)
    return failing


def _words(text: str) -> set[str]:
    """Lower-cased words with and without a possessive 's, hyphenated words whole."""
    words = {w.lower() for w in re.findall(r"[\w'’-]+", text)}
    return words | {_POSSESSIVE.sub("", w) for w in words}
