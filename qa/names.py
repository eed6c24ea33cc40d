"""The fullest form of a name that a document spells out: "Sam Altman" for "Altman".

News and reference texts introduce a person or organisation by full name once, then use the surname
or the short form ("Altman", "the Vikings"). An answer to "Who ...?" read from a later sentence
would then be the short form; the document itself says who that is, so the answer can lead with the
full form, cited to the sentence that gives it.
"""

from __future__ import annotations

import re

import numpy as np

from index.lexical import STOPWORDS
from index.pipeline import DocumentIndex
from qa.evidence import Evidence

MAX_NAME_WORDS = 2  # "Altman", "Bankman-Fried", "New England": a longer name is already given in full
MAX_ADDED_WORDS = 2  # given names and a place before a team's name; more is a title or a list
# A word that can begin a fuller name: capitalised with lower case after it (not an acronym such as
# "CEO" or "FTX", which are titles and organisations before a name), no possessive, no full stop.
_NAME_WORD = r"[A-Z][a-z][\w-]*(?<!['’]s)"


def _is_bare_name(phrase: str) -> bool:
    words = phrase.split()
    return 0 < len(words) <= MAX_NAME_WORDS and all(w[:1].isupper() for w in words)


def fuller_name(
    index: DocumentIndex, ev: Evidence, phrase: tuple[str, int, int]
) -> tuple[Evidence, tuple[str, int, int]] | None:
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
    pattern = re.compile(
        rf"(?<![\w'’-])((?:{_NAME_WORD}\s+){{1,{MAX_ADDED_WORDS}}}){re.escape(text)}(?![\w-])"
    )
    best: tuple[int, int, Evidence, tuple[str, int, int]] | None = None
    _, chunks = index.document_chunks(ev.chunk.doc_id)
    for chunk in chunks:
        for i, (start, end) in enumerate(chunk.sentences):
            sentence = chunk.text[start - chunk.start : end - chunk.start]
            for match in pattern.finditer(sentence):
                begin = match.start(1)
                for word in re.finditer(r"\S+", match.group(1)):
                    if word.group(0).lower() not in STOPWORDS:  # "When Sam Altman ...": not "When"
                        break
                    begin = match.start(1) + word.end()
                    begin += len(sentence[begin:]) - len(sentence[begin:].lstrip())
                added_words = sentence[begin : match.start(0) + len(match.group(1))].split()
                added = len(added_words)
                if added == 0 or set(added_words) & set(text.split()):  # "Compton Effect Arthur H. Compton"
                    continue
                if best is not None and (added, -start) <= (best[0], -best[1]):
                    continue
                found = (sentence[begin : match.end()], begin, match.end())
                vector = np.asarray(chunk.sentence_vectors[i], dtype=np.float32)
                name_ev = Evidence(
                    chunk=chunk,
                    start=start,
                    end=end,
                    text=sentence,
                    vector=vector,
                    dense=0.0,
                    coverage=0.0,
                    score=0.0,
                    passage_rank=-1,
                )
                best = (added, start, name_ev, found)
    return None if best is None else (best[2], best[3])
