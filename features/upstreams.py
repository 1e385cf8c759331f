"""Where each raw file of the dataset comes from, and how it is fetched and checked.

Every raw file of ``../shared/data/raw`` (see its PROVENANCE.md) is one row of :data:`RAW_FILES`:

- an **upstream** file: the public repository and path PROVENANCE.md names. The default URL is
  the raw-file URL of the repository's default branch (``HEAD`` names it on the raw host, so no
  branch name is guessed). ``export_10day.csv`` was extracted from the repository's ``data.js``;
  the update performs the same extraction (:func:`extract_export_10day`).
- a **local** file: compiled for this project from several sources (``press-compiled/``,
  ``market-compiled/``), or a file whose upstream path PROVENANCE.md does not name. It has no
  upstream: the update copies it from the local raw folder (``data.raw``).

``docs/upstreams.md`` is the same table in words. Overrides (:func:`resolve_upstreams`):
``data.upstream`` maps one raw path to a URL or a local path; ``data.upstream_base`` serves every
upstream file from ``<base>/<raw path>`` (a mirror or a test server holds the files as staged,
so no extraction applies there).

:func:`fetch` reads one upstream with httpx: a timeout, retries with exponential backoff on HTTP
5xx and transport errors, a size limit, and a conditional request (``If-None-Match``) when the
previous fetch gave an ETag. :func:`check_raw_file` refuses what is not the file: an HTML page,
bytes that are not UTF-8, a file cut short (no final line end, a short row, fewer rows than the
active vintage holds).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from features.errors import ExportcastError

RAW_HOST = "https://raw.githubusercontent.com"


class UpstreamError(ExportcastError, RuntimeError):
    """An upstream could not be read or did not hold the file; the message names the upstream,
    the raw file and what failed (one line)."""


@dataclass(frozen=True)
class RawFile:
    """One raw file: its path under the raw folder, and its public origin (None: local)."""

    rel: str
    repo: str | None = None  # owner/name of the public repository
    path: str | None = None  # the file's path in that repository
    extract: str | None = None  # the extraction the update performs ("export_10day"), if any
    local_reason: str = ""  # why the file has no upstream

    @property
    def default_url(self) -> str | None:
        if self.repo is None or self.path is None:
            return None
        return f"{RAW_HOST}/{self.repo}/HEAD/{quote(self.path)}"


_HWANI = "HwaniKimcloud/korea_export_dashboard"
_PSICSH = "psicsh/Korea-trade-dashboard"
_ROHAN = "rohan-joshua-git/south-korea-export-forecast"
_COMPILED = "compiled for this project from several sources (each row names its source)"
AUTO_PARTS_NAME = "자동차부품(742)_수출입통계_시계열용 (2011~2021).csv"

RAW_FILES: tuple[RawFile, ...] = (
    RawFile(
        "Navy10021+Korea_Export_Prediction_App/bi_data.csv", "Navy10021/Korea_Export_Prediction_App", "data/bi_data.csv"
    ),
    RawFile(
        "namyikim+predict_stock/semiconductor_exports.csv",
        "namyikim/predict_stock",
        "macro_history/semiconductor_exports.csv",
    ),
    RawFile("HwaniKimcloud+korea_export_dashboard/industry20_monthly.csv", _HWANI, "industry20_monthly.csv"),
    RawFile(
        "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv", _HWANI, "korea_total_export_monthly.csv"
    ),
    RawFile("HwaniKimcloud+korea_export_dashboard/industry_monthly.csv", _HWANI, "industry_monthly.csv"),
    RawFile("HwaniKimcloud+korea_export_dashboard/mti6_master.csv", _HWANI, "mti6_master.csv"),
    RawFile("HwaniKimcloud+korea_export_dashboard/country_monthly.csv", _HWANI, "country_monthly.csv"),
    RawFile(
        "gregthomasschuck-cell+memory-price-tracker/korea_exports.csv",
        "gregthomasschuck-cell/memory-price-tracker",
        "data/korea_exports.csv",
    ),
    RawFile("psicsh+Korea-trade-dashboard/trade_industry.csv", _PSICSH, "data/trade_industry.csv"),
    RawFile("psicsh+Korea-trade-dashboard/trade_region.csv", _PSICSH, "data/trade_region.csv"),
    RawFile(
        "psicsh+Korea-trade-dashboard/region_groups_reference.json",
        local_reason="PROVENANCE.md names its repository and commit but not its path",
    ),
    RawFile(
        "rohan-joshua-git+south-korea-export-forecast/customs_flash.csv",
        _ROHAN,
        "exports_forecast/data/customs_flash.csv",
    ),
    RawFile(
        "rohan-joshua-git+south-korea-export-forecast/wsts_billings.csv",
        _ROHAN,
        "exports_forecast/data/wsts_billings.csv",
    ),
    RawFile(
        "jroh7115-arch+macro-dashboard/export_10day.csv",
        "jroh7115-arch/macro-dashboard",
        "data.js",
        extract="export_10day",
    ),
    RawFile(f"Hyeeein+ImportAndExport/{AUTO_PARTS_NAME}", "Hyeeein/ImportAndExport", f"Datasets/{AUTO_PARTS_NAME}"),
    RawFile("press-compiled/monthly_totals_2022_2024.csv", local_reason=_COMPILED + ": news reports"),
    RawFile("market-compiled/sox_monthly.csv", local_reason=_COMPILED),
    RawFile("market-compiled/samsung_005930_monthly.csv", local_reason=_COMPILED),
    RawFile("market-compiled/skhynix_000660_monthly.csv", local_reason=_COMPILED),
    RawFile("market-compiled/dram_export_price_index_usd_monthly.csv", local_reason=_COMPILED),
    RawFile("market-compiled/dram_export_price_index_krw_monthly.csv", local_reason=_COMPILED),
    RawFile("PROVENANCE.md", local_reason="the provenance notes of the staged files"),
)
RAW_BY_REL: dict[str, RawFile] = {f.rel: f for f in RAW_FILES}

# the labels the dataset builder's checks use for a source -> the raw file behind it (longest first),
# so that a refused check names the upstream(s) it compared
CHECK_LABELS: tuple[tuple[str, str], ...] = (
    ("sum over all countries", "HwaniKimcloud+korea_export_dashboard/country_monthly.csv"),
    ("all-country file", "HwaniKimcloud+korea_export_dashboard/country_monthly.csv"),
    ("customs total", "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv"),
    ("export_10day", "jroh7115-arch+macro-dashboard/export_10day.csv"),
    ("trade_region", "psicsh+Korea-trade-dashboard/trade_region.csv"),
    ("trade_industry", "psicsh+Korea-trade-dashboard/trade_industry.csv"),
    ("customs-MTI", "psicsh+Korea-trade-dashboard/trade_industry.csv"),
    ("industry20", "HwaniKimcloud+korea_export_dashboard/industry20_monthly.csv"),
    ("bi_data", "Navy10021+Korea_Export_Prediction_App/bi_data.csv"),
    ("KOSIS", "namyikim+predict_stock/semiconductor_exports.csv"),
    ("K-stat 742", "HwaniKimcloud+korea_export_dashboard/industry_monthly.csv"),
    ("KITA", "HwaniKimcloud+korea_export_dashboard/industry_monthly.csv"),
    ("ministry preliminary", "press-compiled/monthly_totals_2022_2024.csv"),
)


def resolve_upstreams(overrides: Mapping[str, str] | None = None, base: str | None = None) -> dict[str, str | None]:
    """Raw path -> upstream (URL or local path; None = local file, copied from the raw folder).

    ``base`` serves every upstream file from ``<base>/<raw path>`` (path segments URL-quoted
    for an http(s) base); ``overrides`` then replace single files (a local file may be given an
    upstream this way). An override naming no known raw file is an error."""
    unknown = sorted(set(overrides or {}) - set(RAW_BY_REL))
    if unknown:
        raise UpstreamError(
            f"data.upstream names {unknown[0]!r}, which is not a raw file of the dataset; "
            f"known: {', '.join(f.rel for f in RAW_FILES if f.repo)}"
        )
    out: dict[str, str | None] = {}
    for raw in RAW_FILES:
        if raw.repo is None:
            out[raw.rel] = None
        elif base:
            out[raw.rel] = join_base(base, raw.rel)
        else:
            out[raw.rel] = raw.default_url
    out.update({rel: str(target) for rel, target in (overrides or {}).items()})
    return out


def join_base(base: str, rel: str) -> str:
    """``<base>/<rel>``: URL-quoted segments for an http(s) base, a plain path otherwise."""
    if is_url(base):
        return base.rstrip("/") + "/" + "/".join(quote(part) for part in rel.split("/"))
    return str(Path(base) / rel)


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def needs_extraction(rel: str, upstream: str) -> str | None:
    """The extraction an upstream needs: the raw file's own (``export_10day``) when the upstream
    holds the source format (a ``.js`` file), none when it serves the staged file itself."""
    raw = RAW_BY_REL.get(rel)
    if raw is None or raw.extract is None:
        return None
    return raw.extract if upstream.split("?")[0].endswith(".js") else None


# ---------------------------------------------------------------------------- fetching
@dataclass(frozen=True)
class FetchPolicy:
    """How upstreams are read: seconds before a read times out, attempts in all, the first
    backoff delay (doubled each retry), the largest file accepted."""

    timeout: float = 30.0
    attempts: int = 3
    backoff: float = 1.0
    max_bytes: int = 50 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """What one fetch returned: the bytes (None when the upstream said 304 Not Modified) and the ETag."""

    content: bytes | None
    etag: str | None = None


def fetch(
    rel: str,
    upstream: str,
    *,
    policy: FetchPolicy,
    client: httpx.Client | None = None,
    etag: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Fetched:
    """The bytes of ``upstream`` (URL or local path) for the raw file ``rel``; :class:`UpstreamError`
    (one line naming both) on 4xx, on 5xx or transport errors after ``policy.attempts`` tries,
    or when the file exceeds ``policy.max_bytes``."""
    if not is_url(upstream):
        path = Path(upstream)
        if not path.is_file():
            raise UpstreamError(f"{upstream} ({rel}): file not found")
        if path.stat().st_size > policy.max_bytes:
            raise UpstreamError(
                f"{upstream} ({rel}): {path.stat().st_size} bytes, above the limit of {policy.max_bytes} bytes"
            )
        return Fetched(path.read_bytes())
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout, follow_redirects=True)
    try:
        return _fetch_url(rel, upstream, http, policy, etag, sleep)
    finally:
        if own:
            http.close()


def _fetch_url(
    rel: str, url: str, http: httpx.Client, policy: FetchPolicy, etag: str | None, sleep: Callable[[float], None]
) -> Fetched:
    headers = {"If-None-Match": etag} if etag else {}
    problem = ""
    for attempt in range(1, policy.attempts + 1):
        try:
            with http.stream("GET", url, headers=headers, timeout=policy.timeout) as response:
                if response.status_code == 304:
                    return Fetched(None, etag)
                if response.status_code >= 500:
                    problem = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                elif response.status_code >= 400:
                    raise UpstreamError(f"{url} ({rel}): HTTP {response.status_code} {response.reason_phrase}".rstrip())
                else:
                    content = _read_limited(response, rel, url, policy.max_bytes)
                    _refuse_html(rel, url, content, response.headers.get("content-type", ""))
                    return Fetched(content, response.headers.get("etag"))
        except httpx.TimeoutException as err:
            problem = f"timed out after {policy.timeout:g} s ({type(err).__name__})"
        except httpx.TransportError as err:
            problem = f"{type(err).__name__}: {err}"
        if attempt < policy.attempts:
            sleep(policy.backoff * 2 ** (attempt - 1))
    tries = f"{policy.attempts} attempt{'s' if policy.attempts > 1 else ''}"
    raise UpstreamError(f"{url} ({rel}): failed after {tries} (last: {problem})")


def _read_limited(response: httpx.Response, rel: str, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UpstreamError(f"{url} ({rel}): {declared} bytes, above the limit of {max_bytes} bytes")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise UpstreamError(f"{url} ({rel}): more than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_html(rel: str, upstream: str, content: bytes, content_type: str = "") -> None:
    head = content[:512].lstrip().lower()
    if "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html")):
        raise UpstreamError(f"{upstream} ({rel}): an HTML page, not the file (an error or login page?)")


# ---------------------------------------------------------------------------- checking and extraction
def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_raw_file(rel: str, upstream: str, content: bytes, previous: bytes | None = None) -> None:
    """Refuse bytes that are not a whole copy of the raw file (:class:`UpstreamError`, one line):
    an HTML page, text that is not UTF-8, a CSV cut short (no line end after its last row, a row
    with fewer fields than the header, fewer rows than ``previous``: upstreams add months, they do
    not lose them), a JSON file that does not parse."""
    _refuse_html(rel, upstream, content)
    where = f"{upstream} ({rel})"
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UpstreamError(f"{where}: not UTF-8 text (byte {err.start}): not the file") from None
    if rel.endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise UpstreamError(f"{where}: not valid JSON (line {err.lineno}: {err.msg}): truncated?") from None
        return
    if not rel.endswith(".csv"):
        return
    if not text.strip():
        raise UpstreamError(f"{where}: the file is empty")
    if not text.endswith(("\n", "\r")):
        raise UpstreamError(f"{where}: truncated: the last line has no line end")
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if row and len(row) < width:
            raise UpstreamError(f"{where}: truncated: line {number} has {len(row)} of {width} fields")
    if previous is not None:
        before = _data_rows(previous)
        now = sum(1 for row in rows[1:] if row)
        if now < before:
            raise UpstreamError(f"{where}: truncated: {now} rows, the active vintage's copy has {before}")


def _data_rows(content: bytes) -> int:
    text = content.decode("utf-8-sig", errors="replace")
    return sum(1 for row in list(csv.reader(io.StringIO(text)))[1:] if row)


EXPORT_10DAY_COLUMNS = ("month", "period", "item", "export_1000usd")


def extract_export_10day(content: bytes, upstream: str, rel: str) -> bytes:
    """``export_10day.csv`` from the repository's ``data.js``: the JSON block ``export_10day``
    (month YYYYMM -> period -> item -> value, thousand USD) written one row per value, in the
    block's order, month as YYYY-MM; no figure changed (PROVENANCE.md)."""
    text = content.decode("utf-8-sig", errors="replace")
    match = re.search(r"""["']?export_10day["']?\s*[:=]\s*""", text)
    if match is None:
        raise UpstreamError(f"{upstream} ({rel}): no export_10day block in the file")
    try:
        block, _ = json.JSONDecoder().raw_decode(text, match.end())
    except json.JSONDecodeError as err:
        raise UpstreamError(f"{upstream} ({rel}): the export_10day block is not JSON ({err.msg}): truncated?") from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_10DAY_COLUMNS)
    if not isinstance(block, dict):
        raise UpstreamError(f"{upstream} ({rel}): export_10day is not a mapping of months")
    for month, periods in block.items():
        if not re.fullmatch(r"\d{6}", str(month)) or not isinstance(periods, dict):
            raise UpstreamError(f"{upstream} ({rel}): export_10day key {month!r} is not a month YYYYMM")
        for period, items in periods.items():
            for item, value in (items or {}).items():
                writer.writerow((f"{month[:4]}-{month[4:]}", period, item, _number_text(value)))
    return out.getvalue().encode("utf-8")


def _number_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def files_named_by_check(message: str) -> list[str]:
    """The raw files a refused check's message names, by path or by the builder's source labels."""
    named = [f.rel for f in RAW_FILES if f.rel in message]
    for label, rel in CHECK_LABELS:
        if label in message and rel not in named:
            named.append(rel)
    return named
