"""BM25 over chunks, with name-variant keys so differently spelled names still meet.

Besides stemmed words, every capitalised word (and every pair of adjacent capitalised words) adds a
consonant *skeleton* key: lower-cased, an ``al-``/``el-`` article dropped, vowels and h/w/y removed,
c/q folded to k, doubled letters collapsed. "Abu Kamal", "Albu Kamal" and "Boukamal" all give
``~bkml``; "Al-Bagdadi", "Al-Bagdad" and "Baghdadi" give ``~bgdd``. Questions get the same keys for
every word, capitalised or not, so a user's lower-case spelling still finds the name.

The index is incremental (add and remove chunk ids) and is scored with NumPy.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import Stemmer

_WORD = re.compile(r"\w+(?:[-'’]\w+)*", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves s t""".split()
)
_PARTS = re.compile(r"[-'’]")
_ARTICLE = re.compile(r"^(?:al|el)[-'’]?(?=\w{4,})")
_SKELETON_DROP = re.compile(r"[aeiouyhw\W_\d]+")
_POSSESSIVE = re.compile(r"['’]s$")
_REPEATS = re.compile(r"(.)\1+")
SKELETON_WEIGHT = 0.5
STEM_CACHE_WORDS = 500_000


@functools.lru_cache(maxsize=262_144)  # the answerer asks for the same words' keys on every question
def skeleton(word: str) -> str | None:
    """Consonant skeleton of a name (see module docstring); None when too short to be useful."""
    if any(ch.isdigit() for ch in word):
        return None
    low = _ARTICLE.sub("", _POSSESSIVE.sub("", word.lower()))
    low = low.replace("ph", "f").replace("c", "k").replace("q", "k")
    key = _SKELETON_DROP.sub("", low)
    key = _REPEATS.sub(r"\1", key)
    return f"~{key}" if len(key) >= 3 else None


class Analyzer:
    """Turns text into weighted BM25 terms."""

    def __init__(self, *, cache_size: int = 200_000) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._terms_cache: dict[str, frozenset[str]] = {}
        self._cache_size = cache_size
        # word -> its stems: building BM25 analyses every chunk, and most words recur, so each
        # distinct word is split and stemmed once (the stemmer treats words independently)
        self._stem_cache: dict[str, tuple[str, ...]] = {}

    def terms_of(self, text: str) -> frozenset[str]:
        """Every term a text can match (its document terms and query-side name keys), cached:
        the answerer asks this of the same sentences over and over."""
        found = self._terms_cache.get(text)
        if found is None:
            found = frozenset(self.document_terms(text)) | frozenset(self.query_terms(text))
            if len(self._terms_cache) >= self._cache_size:
                self._terms_cache.clear()
            self._terms_cache[text] = found
        return found

    def words(self, text: str) -> list[str]:
        """Words, hyphenated names kept whole ("Al-Bagdadi")."""
        return _WORD.findall(text)

    def document_terms(self, text: str) -> list[str]:
        """Terms indexed for a chunk: stems, plus skeletons of capitalised words and pairs."""
        words = self.words(text)
        terms = self._stems(words)
        caps = [w if w[:1].isupper() else None for w in words]
        for i, word in enumerate(caps):
            if word is None:
                continue
            key = skeleton(word)
            if key:
                terms.append(key)
            nxt = caps[i + 1] if i + 1 < len(caps) else None
            if nxt is not None:
                pair = skeleton(word + nxt)
                if pair:
                    terms.append(pair)
        return terms

    def query_terms(self, text: str) -> dict[str, float]:
        """Weighted terms of a question: stems (weight 1) and name skeletons (lower weight)."""
        words = self.words(text)
        weights: dict[str, float] = {}
        for term in self._stems(words):
            weights[term] = weights.get(term, 0.0) + 1.0
        content = [w for w in words if w.lower() not in STOPWORDS]
        for i, word in enumerate(content):
            keys = [skeleton(word)]
            if i + 1 < len(content):
                keys.append(skeleton(word + content[i + 1]))
            for key in keys:
                if key and key not in weights:
                    weights[key] = SKELETON_WEIGHT
        return weights

    def _stems(self, words: Sequence[str]) -> list[str]:
        cache = self._stem_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            if len(cache) + len(missing) > STEM_CACHE_WORDS:
                cache.clear()
            parts = [[p for p in _PARTS.split(w.lower()) if p and p not in STOPWORDS] for w in missing]
            stems = iter(self._stemmer.stemWords([p for word_parts in parts for p in word_parts]))
            for word, word_parts in zip(missing, parts, strict=True):
                cache[word] = tuple(next(stems) for _ in word_parts)
        return [stem for w in words for stem in cache[w]]


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    score: float


class BM25Index:
    """Incremental Okapi BM25 over chunk ids.

    Args:
        k1: term-frequency saturation.
        b: length normalisation.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.analyzer = Analyzer()
        self._row_of: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._lengths: list[int] = []
        self._postings: dict[str, dict[int, int]] = {}
        self._row_terms: list[tuple[str, ...]] = []
        self._total_length = 0
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._length_array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._row_of)

    def __getstate__(self) -> dict[str, object]:
        """What a snapshot keeps (see :mod:`index.snapshot`): the postings as flat arrays, not the
        analyzer or caches. Pickled as dicts, every row number in them would come back as its own
        int object (5 million at 100k chunks); rebuilt from arrays they share one per row."""
        state = dict(self.__dict__)
        del state["analyzer"], state["_postings"]
        state["_cache"], state["_length_array"] = {}, None
        postings = self._postings
        terms = list(postings)
        sizes = np.fromiter((len(postings[t]) for t in terms), dtype=np.int64, count=len(terms))
        total = int(sizes.sum())
        state["_postings_terms"] = terms
        state["_postings_sizes"] = sizes
        state["_postings_rows"] = np.fromiter((r for t in terms for r in postings[t]), dtype=np.int32, count=total)
        state["_postings_tf"] = np.fromiter(
            (tf for t in terms for tf in postings[t].values()), dtype=np.int32, count=total
        )
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        terms: list[str] = state.pop("_postings_terms")  # type: ignore[assignment]
        sizes: np.ndarray = state.pop("_postings_sizes")  # type: ignore[assignment]
        rows: list[int] = state.pop("_postings_rows").tolist()  # type: ignore[attr-defined]
        tfs: list[int] = state.pop("_postings_tf").tolist()  # type: ignore[attr-defined]
        self.__dict__.update(state)
        self.analyzer = Analyzer()
        shared = list(range(len(self._ids)))  # one int object per row number
        self._postings = {}
        lo = 0
        for term, size in zip(terms, sizes.tolist(), strict=True):
            hi = lo + size
            self._postings[term] = dict(zip(map(shared.__getitem__, rows[lo:hi]), tfs[lo:hi], strict=True))
            lo = hi

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._row_of

    def ids(self) -> set[str]:
        return set(self._row_of)

    @property
    def term_count(self) -> int:
        """Distinct terms (words, stems and name keys) in the index."""
        return len(self._postings)

    def frequency(self, term: str) -> int:
        """How many chunks contain a term."""
        return len(self._postings.get(term, ()))

    def idf(self, term: str) -> float:
        """BM25 idf of a term; a term no chunk contains gets the highest idf."""
        n = len(self._row_of)
        df = self.frequency(term)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def add(self, chunk_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index chunks; an id already present is replaced."""
        self.remove([cid for cid in chunk_ids if cid in self._row_of])
        for chunk_id, text in zip(chunk_ids, texts, strict=True):
            counts = Counter(self.analyzer.document_terms(text))
            row = len(self._ids)
            self._ids.append(chunk_id)
            self._row_of[chunk_id] = row
            length = sum(counts.values())
            self._lengths.append(length)
            self._total_length += length
            self._row_terms.append(tuple(counts))
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[row] = tf
            if self._cache:  # empty while the index is first built
                for term in counts:
                    self._cache.pop(term, None)
        self._length_array = None

    def remove(self, chunk_ids: Iterable[str]) -> None:
        """Drop chunks by id; unknown ids are ignored."""
        for chunk_id in chunk_ids:
            row = self._row_of.pop(chunk_id, None)
            if row is None:
                continue
            self._ids[row] = None
            self._total_length -= self._lengths[row]
            for term in self._row_terms[row]:
                posting = self._postings.get(term)
                if posting is not None:
                    posting.pop(row, None)
                    if not posting:
                        del self._postings[term]
                self._cache.pop(term, None)
            self._row_terms[row] = ()
        if len(self._ids) > 1000 and len(self._row_of) < len(self._ids) // 2:
            self._compact()

    def _compact(self) -> None:
        live = [(cid, row) for cid, row in self._row_of.items()]
        old_terms, old_lengths, old_postings = self._row_terms, self._lengths, self._postings
        self.__init__(k1=self.k1, b=self.b)  # type: ignore[misc]
        for new_row, (cid, row) in enumerate(live):
            self._ids.append(cid)
            self._row_of[cid] = new_row
            self._lengths.append(old_lengths[row])
            self._total_length += old_lengths[row]
            self._row_terms.append(old_terms[row])
            for term in old_terms[row]:
                self._postings.setdefault(term, {})[new_row] = old_postings[term][row]

    def search(self, query: str, *, k: int = 10, allowed: set[str] | None = None) -> list[LexicalHit]:
        """Top ``k`` chunks by BM25 for ``query``, optionally only among ``allowed`` ids."""
        n = len(self._row_of)
        if n == 0:
            return []
        if self._length_array is None:
            self._length_array = np.asarray(self._lengths, dtype=np.float32)
        avg = self._total_length / n if n else 1.0
        scores = np.zeros(len(self._ids), dtype=np.float32)
        for term, weight in self.analyzer.query_terms(query).items():
            posting = self._postings.get(term)
            if not posting:
                continue
            cached = self._cache.get(term)
            if cached is None:
                cached = (np.fromiter(posting.keys(), dtype=np.int64), np.fromiter(posting.values(), dtype=np.float32))
                self._cache[term] = cached
            rows, tf = cached
            idf = math.log(1.0 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = tf + self.k1 * (1.0 - self.b + self.b * self._length_array[rows] / avg)
            scores[rows] += weight * idf * tf * (self.k1 + 1.0) / norm
        if allowed is not None:
            mask = np.zeros(len(self._ids), dtype=bool)
            mask[[self._row_of[c] for c in allowed if c in self._row_of]] = True
            scores[~mask] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
        return [LexicalHit(chunk_id=self._ids[row] or "", score=float(scores[row])) for row in top]
