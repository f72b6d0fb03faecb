"""Phone numbers to E.164 with Google's libphonenumber metadata (the `phonenumbers` package).

Each distinct (value, region) is parsed once per process and remembered: real data repeats
the same numbers across orders. Parsing costs ~40 us a number in Python, so a batch with many
new numbers is split over a pool of worker processes, one per core (a full load parses a
million numbers; the GIL would keep that to one core). This module imports nothing heavier
than `phonenumbers`, so the workers start fast.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import multiprocessing
import os
import threading

import phonenumbers

Parsed = tuple[str | None, str | None]

# Below this many new numbers in a batch, parsing here is cheaper than a trip to the pool.
POOL_MIN_NUMBERS = 512
_CACHE_MAX = 2_000_000
_cache: dict[tuple[str | None, str | None], Parsed] = {}


def parse_phone(raw: str | None, region: str | None) -> Parsed:
    """(E.164, None) for a valid number, else (None, why it was rejected)."""
    if raw is None or not raw.strip():
        return None, None
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        reason = {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no country code or region",
            phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            phonenumbers.NumberParseException.TOO_LONG: "too long",
        }.get(exc.error_type, "unparsable")
        return None, reason
    if not phonenumbers.is_valid_number(number):
        return None, "not a valid number for its region"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _parse_all(pairs: list[tuple[str | None, str | None]]) -> list[Parsed]:
    return [parse_phone(raw, region) for raw, region in pairs]


_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()  # DuckDB may call the functions from several threads at once


def _workers() -> concurrent.futures.ProcessPoolExecutor:
    """The process's one pool, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the parent runs DuckDB's threads
            _pool = concurrent.futures.ProcessPoolExecutor(
                os.cpu_count(), mp_context=multiprocessing.get_context("spawn")
            )
            atexit.register(_pool.shutdown)  # before interpreter teardown, or it complains
        return _pool


_pool_broken = False


def _pool_failed() -> None:
    """Workers cannot start (a main script without `if __name__ == "__main__"` guard, which
    spawn imports again): parse in this process from now on."""
    global _pool_broken
    _pool_broken = True
    _workers().shutdown(wait=False, cancel_futures=True)


def parse_phones(raws: list[str | None], regions: list[str | None]) -> list[Parsed]:
    """parse_phone for every row, each distinct new (value, region) parsed once."""
    global _cache
    if len(_cache) > _CACHE_MAX:
        _cache = {}  # a new dict, not clear(): a call in another thread keeps the one it read
    cache = _cache
    pairs = list(zip(raws, regions, strict=True))
    new = list(dict.fromkeys(p for p in pairs if p not in cache))
    workers = os.cpu_count() or 1
    parsed = None
    if len(new) >= POOL_MIN_NUMBERS and workers > 1 and not _pool_broken:
        size = -(-len(new) // workers)
        parts = [new[i : i + size] for i in range(0, len(new), size)]
        try:
            parsed = [result for part in _workers().map(_parse_all, parts) for result in part]
        except concurrent.futures.process.BrokenProcessPool:
            _pool_failed()
    if parsed is None:
        parsed = _parse_all(new)
    cache.update(zip(new, parsed, strict=True))
    return [cache[p] for p in pairs]
