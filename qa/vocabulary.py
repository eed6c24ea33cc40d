"""What a collection's words and names are: static word vectors for soft term matching (cached),
contextual vectors for names (aliases), and the names each document is mostly about.

Split out of :mod:`qa.evidence`, which scores sentences with them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import numpy as np

from index.embedding import Embedder
from index.lexical import STOPWORDS, skeleton
from index.pipeline import DocumentIndex

_NAME = re.compile(r"\b[A-Z][\w'-]+(?: [A-Z][\w'-]+)*")


class DocumentTopics:
    """The names a document is mostly about ("Boukamal", "Abu Kamal"), cached per content hash.

    News sentences often refer to their subject as "the town" or "its last major stronghold"; a
    sentence gets partial credit for the document's main names, as it does for its previous sentence.
    """

    def __init__(self, index: DocumentIndex, *, names: int = 5) -> None:
        self.index = index
        self.names = names
        self._cache: dict[tuple[str, str], list[str]] = {}

    def topic(self, doc_id: str) -> str:
        return " ".join(self.names_of(doc_id))

    def names_of(self, doc_id: str) -> list[str]:
        key = (doc_id, self.index.document_version(doc_id))
        if key not in self._cache:
            _, chunks = self.index.document_chunks(doc_id)
            counts: dict[str, int] = {}
            surface: dict[str, str] = {}
            for chunk in chunks:
                for match in _NAME.finditer(chunk.text):
                    words = match.group(0).split()
                    while words and words[0].lower() in STOPWORDS:
                        words.pop(0)  # "The ISIS" at a sentence start is "ISIS"
                    if not words:
                        continue
                    name = " ".join(words)
                    sk = skeleton(name.replace(" ", "")) or name.lower()
                    counts[sk] = counts.get(sk, 0) + 1
                    surface.setdefault(sk, name)
            top = sorted(counts, key=lambda k: (-counts[k], k))[: self.names]
            self._cache[key] = [surface[k] for k in top]
        return self._cache[key]


class WordVectors:
    """Word vectors for soft term matching, cached: static ones for words (see
    :meth:`Embedder.word_vectors`), contextual ones for names (aliases need the model).

    Args:
        embedder: the index's embedding model.
        capacity: words kept; the cache is cleared when full (vocabularies are small).
    """

    def __init__(self, embedder: Embedder, *, capacity: int = 100_000) -> None:
        self.embedder = embedder
        self.capacity = capacity
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def vectors(self, words: list[str]) -> np.ndarray:
        """Static vectors (cheap lookups), one row per word."""
        return self._cached([w.lower() for w in words], self.embedder.word_vectors)

    def similarity(self, left: list[str], right: list[str]) -> np.ndarray:
        return self.vectors(left) @ self.vectors(right).T

    def name_vectors(self, names: list[str]) -> np.ndarray:
        """Each name embedded on its own by the model (a forward pass, so kept for names), cached."""
        # Their own key space: "Said" the name is not the static vector of "said".
        keys = ["\0" + n for n in names]
        return self._cached(keys, lambda todo: self.embedder.embed_queries([k[1:] for k in todo]))

    def _cached(self, keys: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        with self._lock:
            found = {k: self._cache[k] for k in set(keys) if k in self._cache}
        todo = sorted(set(keys) - found.keys())
        if todo:
            fresh = dict(zip(todo, compute(todo), strict=True))
            found.update(fresh)
            with self._lock:
                if len(self._cache) + len(todo) > self.capacity:
                    self._cache.clear()
                self._cache.update(fresh)
        return np.stack([found[k] for k in keys])

    def name_similarity(self, left: list[str], right: list[str]) -> np.ndarray:
        return self.name_vectors(left) @ self.name_vectors(right).T
