"""A book catalog built once at start-up (about a second of real work) and kept.

``build_catalog()`` derives 20,000 books from hashes and then "trains" a ranking
key (a deliberately slow key derivation, the stand-in for loading a model).
``CATALOG = hotmod.keep("catalog", build_catalog)`` makes it once: when hotmod
re-executes this module, or any module of the app, it hands back the same
object, so a reload costs milliseconds, not the second. Change
``build_catalog``'s own code and the catalog is built again (once).

Edit ``Catalog.search`` or ``Book.label`` while the app runs: the live catalog,
made before the edit, runs the new methods at once. Change ``LABEL``: this module
and its importers run again (a module constant), the app is rebuilt, and still
the catalog is not: the API's labels change, ``/api/status``'s ``built_at`` does not.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import hotmod

SIZE = 20_000
# Rounds of the slow "training" step: about a second on a 2020s server core.
TRAINING_ROUNDS = 2_000_000

_ADJECTIVES = ("Silent", "Hidden", "Last", "Broken", "Golden", "Distant", "Quiet", "Iron")
_NOUNS = ("River", "Garden", "Empire", "Letter", "Winter", "Harbour", "Library", "Engine")
_AUTHORS = ("Ada Byron", "Alan Turing", "Grace Hopper", "Guido van Rossum", "Barbara Liskov")

# How pages and the API name a book.
LABEL = "{title} ({author}, {year})"


@dataclass(frozen=True)
class Book:
    """One book of the catalog."""

    id: int
    title: str
    author: str
    year: int
    score: float  # 0 to 5

    def label(self) -> str:
        """How pages and the API name a book."""
        return LABEL.format(title=self.title, author=self.author, year=self.year)


class Catalog:
    """The books, an index of title words, and how long building them took."""

    def __init__(self, books: list[Book], key: bytes, built_ms: float) -> None:
        self.books = books
        self.key = key
        self.built_ms = built_ms
        self.built_at = time.time()
        self._by_word: dict[str, list[Book]] = {}
        for book in books:
            for word in book.title.lower().split():
                self._by_word.setdefault(word, []).append(book)

    def __len__(self) -> int:
        return len(self.books)

    def get(self, book_id: int) -> Book | None:
        """The book with id ``book_id``, or None."""
        if 0 <= book_id < len(self.books):
            return self.books[book_id]
        return None

    def search(self, query: str, *, limit: int = 10) -> list[Book]:
        """Books whose title has every word of ``query``, best score first."""
        words = query.lower().split()
        if not words:
            found = self.books
        else:
            found = [b for b in self._by_word.get(words[0], []) if _has_all(b, words[1:])]
        return sorted(found, key=lambda b: (-b.score, b.id))[:limit]


def _has_all(book: Book, words: list[str]) -> bool:
    title = book.title.lower().split()
    return all(word in title for word in words)


def build_catalog() -> Catalog:
    """Make the catalog: the slow start-up step ``hotmod.keep`` saves on every reload."""
    started = time.perf_counter()
    books = []
    for i in range(SIZE):
        digest = hashlib.sha256(i.to_bytes(4, "big")).digest()
        title = f"The {_ADJECTIVES[digest[0] % 8]} {_NOUNS[digest[1] % 8]}"
        if digest[2] % 3 == 0:
            title += f" {_NOUNS[digest[3] % 8]}"
        author = _AUTHORS[digest[4] % len(_AUTHORS)]
        books.append(Book(i, title, author, 1900 + digest[5] % 125, round(digest[6] / 51, 1)))
    key = hashlib.pbkdf2_hmac("sha256", b"catalog", b"hotmod", TRAINING_ROUNDS)
    return Catalog(books, key, (time.perf_counter() - started) * 1000)


CATALOG = hotmod.keep("catalog", build_catalog)
