"""One large generated module (``app/big.py``): the 5,000-line-module scenario.

The module reads like application code: imports, constants, a base class and a
decorator at the top, then functions in rotation from eight templates (parsing,
aggregation, validation, formatting, a state machine, settings files, word
counts, a generator), with a dataclass or a class with methods every so often.
``order_summary()`` sits in the middle: its body is what the benchmark edits,
and it returns the value the program observes. ``extra`` more lines in that
body shift every later function down by as many lines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

TARGET = "order_summary"  # the edited function; the probe calls it

_HEAD = '''"""Generated large module: order processing helpers (benchmark input)."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "name", "email")
OPTIONAL_FIELDS = frozenset({"age", "phone", "tags", "notes"})
EMAIL_RE = re.compile(r"^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", re.IGNORECASE)
WORD_RE = re.compile(r"[A-Za-z']+")
STOPWORDS = frozenset({"the", "and", "for", "that", "with", "this", "from"})
MAX_ATTEMPTS = 3


def traced(func: Callable[..., Any]) -> Callable[..., Any]:
    """Log calls of ``func`` at debug level."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logger.debug("calling %s", func.__qualname__)
        return func(*args, **kwargs)

    return wrapper


class BaseHandler:
    """What every request handler shares."""

    route = "/"

    def __init__(self) -> None:
        self.calls = 0

    def dispatch(self, method: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        handler = getattr(self, method.lower(), None)
        if handler is None:
            return {"status": 405, "error": f"{method} not allowed on {self.route}"}
        return handler(payload)
'''

_FUNCTIONS = (
    '''

def parse_record_@I@(line: str, sep: str = ",") -> dict[str, Any]:
    """Parse one line of export format @I@ into a record."""
    fields = [part.strip() for part in line.split(sep)]
    if len(fields) < 3:
        raise ValueError(f"record @I@: expected 3 fields, got {len(fields)}")
    key, raw_count, *rest = fields
    try:
        count = int(raw_count)
    except ValueError:
        logger.warning("record %s: bad count %r", key, raw_count)
        count = 0
    tags = {t.lower() for t in rest if t}
    return {"key": key, "count": count, "tags": sorted(tags), "source": "@I@"}
''',
    '''

def aggregate_@I@(
    rows: Iterable[Mapping[str, Any]], *, field: str = "amount"
) -> dict[str, float]:
    """Sum ``field`` per customer; rows without a customer are skipped."""
    totals: defaultdict[str, float] = defaultdict(float)
    skipped = 0
    for row in rows:
        customer = row.get("customer")
        if not customer:
            skipped += 1
            continue
        value = row.get(field, 0)
        if isinstance(value, str):
            value = float(value.replace(",", "")) if value else 0.0
        totals[str(customer)] += float(value)
    if skipped:
        logger.debug("aggregate_@I@: skipped %d rows", skipped)
    return dict(totals)
''',
    '''

def validate_@I@(payload: Mapping[str, Any]) -> list[str]:
    """Problems with a payload of schema @I@, empty when it is valid."""
    problems: list[str] = []
    for name in REQUIRED_FIELDS:
        if name not in payload:
            problems.append(f"missing {name}")
    email = payload.get("email", "")
    if email and not EMAIL_RE.match(str(email)):
        problems.append(f"bad email {email!r}")
    age = payload.get("age")
    if age is not None and not 0 <= int(age) <= 150:
        problems.append(f"age out of range: {age}")
    extra = set(payload) - set(REQUIRED_FIELDS) - OPTIONAL_FIELDS
    if extra:
        problems.append("unexpected: " + ", ".join(sorted(extra)))
    return problems
''',
    '''

def format_table_@I@(rows: list[list[object]], headers: list[str]) -> str:
    """Render rows as a fixed-width text table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for col, text in enumerate(row):
            if col < len(widths):
                widths[col] = max(widths[col], len(text))
    out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths))]
    out.append("-+-".join("-" * w for w in widths))
    for row in cells:
        out.append(" | ".join(t.ljust(w) for t, w in zip(row, widths)))
    return "\\n".join(out)
''',
    '''

def next_state_@I@(state: str, event: str, attempts: int = 0) -> tuple[str, int]:
    """Transition table of workflow @I@."""
    if event == "reset":
        return "idle", 0
    if state == "idle":
        return ("running", 0) if event == "start" else (state, attempts)
    if state == "running":
        if event == "fail":
            attempts += 1
            return ("failed", attempts) if attempts >= MAX_ATTEMPTS else ("retrying", attempts)
        if event == "done":
            return "finished", attempts
    if state == "retrying" and event == "start":
        return "running", attempts
    return state, attempts
''',
    '''

def load_settings_@I@(path: str, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings file @I@ merged over ``defaults``; a missing file gives the defaults."""
    merged = dict(defaults or {})
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return merged
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno}") from exc
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
''',
    '''

@traced
def top_words_@I@(text: str, limit: int = 10) -> list[tuple[str, int]]:
    """The ``limit`` most frequent words of ``text``, ties broken alphabetically."""
    words = [w.lower() for w in WORD_RE.findall(text) if len(w) > 2]
    counts = Counter(w for w in words if w not in STOPWORDS)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        logger.info("top_words_@I@: no words in %d characters", len(text))
    return ranked[:limit]
''',
    '''

def batched_@I@(items: Iterable[Any], size: int = 50) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` items."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
''',
)

_CLASSES = (
    '''

@dataclasses.dataclass
class Inventory@I@:
    """Stock levels of warehouse @I@."""

    name: str
    items: dict[str, int] = dataclasses.field(default_factory=dict)
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, sku: str, quantity: int = 1) -> int:
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        self.items[sku] = self.items.get(sku, 0) + quantity
        return self.items[sku]

    def reserve(self, sku: str, quantity: int) -> bool:
        if self.available(sku) < quantity:
            return False
        self.reserved[sku] = self.reserved.get(sku, 0) + quantity
        return True

    def release(self, sku: str, quantity: int | None = None) -> None:
        held = self.reserved.get(sku, 0)
        quantity = held if quantity is None else min(quantity, held)
        if quantity:
            self.reserved[sku] = held - quantity

    def available(self, sku: str) -> int:
        return self.items.get(sku, 0) - self.reserved.get(sku, 0)

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def low_stock(self, threshold: int = 5) -> list[str]:
        return sorted(sku for sku in self.items if self.available(sku) < threshold)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "items": self.items, "reserved": self.reserved})
''',
    '''

class ResourceHandler@I@(BaseHandler):
    """Handles ``/api/v1/resource@I@``."""

    route = "/api/v1/resource@I@"

    def __init__(self, store: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.store = store if store is not None else {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ResourceHandler@I@:
        return cls(dict(settings.get("store", {})))

    @staticmethod
    def parse_id(raw: object) -> int:
        try:
            value = int(str(raw))
        except ValueError:
            raise ValueError(f"bad id {raw!r}") from None
        if value <= 0:
            raise ValueError(f"ids are positive, got {value}")
        return value

    def get(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        key = str(self.parse_id(payload.get("id")))
        if key not in self.store:
            return {"status": 404, "error": f"no resource {key}"}
        return {"status": 200, "data": self.store[key]}

    def post(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        problems = [f"missing {f}" for f in ("id", "name") if f not in payload]
        if problems:
            return {"status": 422, "errors": problems}
        key = str(self.parse_id(payload["id"]))
        created = key not in self.store
        self.store[key] = {k: v for k, v in payload.items() if k != "id"}
        return {"status": 201 if created else 200, "id": key}

    def delete(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        key = str(self.parse_id(payload.get("id")))
        removed = self.store.pop(key, None)
        return {"status": 204 if removed is not None else 404}

    @functools.cached_property
    def summary(self) -> str:
        return f"{type(self).__name__}({len(self.store)} items, {self.calls} calls)"
''',
)

_CLASS_EVERY = 40  # one class after every this many functions

_TARGET = '''

def order_summary(orders: Iterable[Mapping[str, Any]] = ()) -> int:
    """Summarise a batch of orders; returns the revision of the summary format."""
    totals: dict[str, float] = {}
    for order in orders:
        key = str(order.get("customer", "?"))
        totals[key] = totals.get(key, 0.0) + float(order.get("amount", 0))
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
    if ranked and ranked[0][1] < 0:
        raise ValueError(f"negative total for {ranked[0][0]}")
@EXTRA@    revision = @VALUE@  # edit @EDIT@ @PAD@
    return revision
'''


@dataclass(frozen=True)
class BigModule:
    """The fixed text before and after ``order_summary()``, and what the module holds."""

    head: str
    tail: str
    functions: int  # ``def`` statements (methods and nested functions included)
    classes: int

    def source(self, value: int, *, extra: int = 0, edit: int = 0) -> str:
        added = "".join(
            f"    ranked = ranked[: {1000 + k}]  # line added by edit {k}\n"
            for k in range(1, extra + 1)
        )
        target = (
            _TARGET.replace("@EXTRA@", added)
            .replace("@VALUE@", str(value))
            .replace("@EDIT@", str(edit))
            .replace("@PAD@", "-" * (edit % 3))
        )
        return self.head + target + self.tail

    @property
    def lines(self) -> int:
        return self.source(0).count("\n")


def _chunk(k: int) -> str:
    """Chunk number ``k``: a function, or a class every ``_CLASS_EVERY``."""
    if k % _CLASS_EVERY == _CLASS_EVERY - 1:
        template = _CLASSES[(k // _CLASS_EVERY) % len(_CLASSES)]
    else:
        template = _FUNCTIONS[k % len(_FUNCTIONS)]
    return template.replace("@I@", f"{k:04d}")


@functools.cache
def big_module(lines: int) -> BigModule:
    """A module of about ``lines`` lines with ``order_summary()`` at its middle."""
    target_lines = _TARGET.count("\n")
    before, after = [_HEAD], []
    used = _HEAD.count("\n") + target_lines
    k = 0
    while used < lines // 2:
        text = _chunk(k)
        before.append(text)
        used += text.count("\n")
        k += 1
    while used < lines:
        text = _chunk(k)
        after.append(text)
        used += text.count("\n")
        k += 1
    head, tail = "".join(before), "".join(after)
    text = head + _TARGET + tail
    functions = sum(1 for line in text.splitlines() if line.lstrip().startswith("def "))
    classes = sum(1 for line in text.splitlines() if line.startswith("class "))
    return BigModule(head=head, tail=tail, functions=functions, classes=classes)


def big_source(lines: int, value: int, *, extra: int = 0, edit: int = 0) -> str:
    """Source of ``app/big.py``: ``order_summary()`` returns ``value``, ``extra`` lines added."""
    return big_module(lines).source(value, extra=extra, edit=edit)
