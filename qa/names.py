"""The fullest form of a name that a document spells out: "Sam Altman" for "Altman".

News and reference texts introduce a person or organisation by full name once, then use the surname
or the short form ("Altman", "the Vikings"). An answer to "Who ...?" read from a later sentence
would then be the short form; the document itself says who that is, so the answer can lead with the
full form, cited to the sentence that gives it.
"""

from __future__ import annotations

import re
from itertools import dropwhile

import numpy as np

from index.lexical import STOPWORDS
from index.pipeline import DocumentIndex, IndexedChunk
from qa.evidence import Evidence
from qa.shapes import Phrase

MAX_NAME_WORDS = 2  # "Altman", "Bankman-Fried", "New England": a longer name is already given in full
MAX_ADDED_WORDS = 2  # given names and a place before a team's name; more is a title or a list
# A word that can begin a fuller name: capitalised with lower case after it (not an acronym such as
# "CEO" or "FTX", which are titles and organisations before a name), no possessive, no full stop.
_NAME_WORD = r"[A-Z][a-z][\w-]*(?<!['’]s)"


def _is_bare_name(phrase: str) -> bool:
    words = phrase.split()
    return 0 < len(words) <= MAX_NAME_WORDS and all(w[:1].isupper() for w in words)


def _sentence_evidence(chunk: IndexedChunk, i: int, text: str) -> Evidence:
    """Sentence ``i`` of ``chunk`` as evidence that is cited, not scored."""
    start, end = chunk.sentences[i]
    vector = np.asarray(chunk.sentence_vectors[i], dtype=np.float32)
    return Evidence(
        chunk=chunk, start=start, end=end, text=text, vector=vector, dense=0.0, coverage=0.0, score=0.0, passage_rank=-1
    )


def fuller_name(index: DocumentIndex, ev: Evidence, phrase: Phrase) -> tuple[Evidence, Phrase] | None:
    """The longest form of the name ``phrase`` (a span of ``ev``) that ``ev``'s document spells out.

    Args:
        index: the document index (for the document's chunks and sentences).
        ev: the evidence sentence the phrase was read from.
        phrase: (text, start, end) in ``ev.text``.

    Returns:
        The sentence holding the fuller form (as evidence) and that form as (text, start, end) in
        it; None when the phrase is no bare name or the document has no longer form of it. Between
        equally long forms the first in the document wins (where it introduces the name).
    """
    text = phrase[0]
    if not _is_bare_name(text):
        return None
    own_words = set(text.split())
    pattern = re.compile(
        rf"(?<![\w'’-])((?:{_NAME_WORD}\s+){{1,{MAX_ADDED_WORDS}}}){re.escape(text)}(?![\w-])"
    )
    best: tuple[int, int, Evidence, Phrase] | None = None
    _, chunks = index.document_chunks(ev.chunk.doc_id)
    for chunk in chunks:
        for i, (start, end) in enumerate(chunk.sentences):
            sentence = chunk.text[start - chunk.start : end - chunk.start]
            for match in pattern.finditer(sentence):
                # "When Sam Altman ...": the capitalised sentence opener is no part of the name.
                words = list(dropwhile(lambda w: w.group(0).lower() in STOPWORDS, re.finditer(r"\S+", match.group(1))))
                # A run that repeats the name ("Compton Effect Compton": a heading run into it) is not its fuller form.
                if not words or {w.group(0) for w in words} & own_words:
                    continue
                if best is not None and (len(words), -start) <= (best[0], -best[1]):
                    continue
                begin = match.start(1) + words[0].start()
                name_ev = _sentence_evidence(chunk, i, sentence)
                best = (len(words), start, name_ev, (sentence[begin : match.end()], begin, match.end()))
    return None if best is None else (best[2], best[3])
