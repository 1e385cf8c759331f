"""Korea Customs Service open API (data.go.kr) -> the canonical frame.

Base ``https://apis.data.go.kr/1220000/``, HTTP GET, XML answers (see docs/SOURCES.md):

==========================================  ==========================  =====================
endpoint                                    returns                     our series
==========================================  ==========================  =====================
``Itemtrade/getItemtradeList`` (hsSgn)      exports by HS code          ``item:<slug>``
``nationtrade/getNationtradeList`` (cntyCd)  exports by country          ``destination:<slug>``
``Newtrade/getNewtradeList``                national total              ``total``
==========================================  ==========================  =====================

- The service key comes from the environment variable ``KCS_SERVICE_KEY`` (the portal's
  "Decoding" key; the percent-encoded "Encoding" key works too). It is a secret: it is added
  to the URL by a private transport at the last moment, so the URLs httpx logs or puts in
  its exceptions never hold it, and every message this module writes is masked as well.
- One call covers at most 12 months: longer periods are split.
- Success is ``response/header/resultCode`` ``00`` (``03``, "no data", is an empty answer);
  items are ``response/body/items/item`` with ``year`` (``2025.01``) and ``expDlr`` (USD).
  The grand-total item (``year`` = ``총계``) is skipped, or totals would double.
- Service errors arrive as HTTP 200 with ``resultCode`` 99; gateway errors as a
  ``OpenAPI_ServiceResponse`` document whose ``cmmMsgHeader/returnReasonCode`` 30 means
  "key not registered for this API" and 22 "daily quota exceeded"; each has a message that
  says what to do. HTTP 5xx and transport failures are retried with exponential backoff
  (``base_delay * 2**k``), then reported as one of two errors: "network unreachable"
  (:class:`CustomsUnreachableError`: no connection could be made, e.g. DNS failure,
  connection refused, no route, connect timeout) or "the service is down"
  (:class:`CustomsServiceDownError`: HTTP 5xx, or a timeout / broken answer after connecting).
- An item aggregates several HS codes: a month enters the item's series only when EVERY code
  of the item reported it (a partial sum would understate; the gap stays a gap).

Every frame returned went through :func:`features.contract.validate_frame` and carries a
``source`` column (``customs-api:Itemtrade`` etc.). Values are customs (HS) basis: HS
8541+8542 is about 0.8x the ministry's MTI semiconductor figure, so do not splice the two.
"""

from __future__ import annotations

import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote, quote_plus, unquote

import httpx
import pandas as pd

from features.contract import parse_month, validate_frame
from features.errors import ExportcastError

log = logging.getLogger(__name__)

BASE_URL = "https://apis.data.go.kr/1220000/"
KEY_ENV = "KCS_SERVICE_KEY"
ITEMTRADE = "Itemtrade/getItemtradeList"
NATIONTRADE = "nationtrade/getNationtradeList"
NEWTRADE = "Newtrade/getNewtradeList"
TOTAL_ROW_YEAR = "총계"
MAX_SPAN_MONTHS = 12
HS_CODE_LENGTHS = (2, 4, 6, 10)
MASK = "***"

# Main destinations (ISO 3166 alpha-2) fetched when no country mapping is configured.
DEFAULT_COUNTRIES: dict[str, str] = {
    "destination:china": "CN",
    "destination:united_states": "US",
    "destination:vietnam": "VN",
    "destination:hong_kong": "HK",
    "destination:japan": "JP",
    "destination:taiwan": "TW",
    "destination:singapore": "SG",
    "destination:india": "IN",
}


class CustomsApiError(ExportcastError, RuntimeError):
    """The customs API call failed; the message names the endpoint and period (never the key)."""


class CustomsAuthError(CustomsApiError):
    """No service key, or the key is not registered for the API (gateway code 30)."""


class CustomsQuotaError(CustomsApiError):
    """The daily call quota of the API is used up (gateway code 22)."""


class CustomsUnreachableError(CustomsApiError):
    """No connection could be made (DNS failure, connection refused, no route, connect timeout,
    proxy refused): the network of this machine, not the service, is the problem."""


class CustomsServiceDownError(CustomsApiError):
    """A connection was made but the service failed (HTTP 5xx, a timeout or a broken answer
    after connecting): the customs API is down or overloaded."""


#: transport failures before any connection: the network (or DNS, proxy, firewall) is at fault
UNREACHABLE_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ProxyError,
)


class _KeyTransport(httpx.BaseTransport):
    """Adds ``serviceKey`` to the URL on the way out, below the client: the request objects
    the client logs and puts in its errors never carry the key."""

    def __init__(self, inner: httpx.BaseTransport, key: str):
        self._inner = inner
        self._key = key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        keyed = httpx.Request(
            request.method,
            request.url.copy_add_param("serviceKey", self._key),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(keyed)

    def close(self) -> None:
        self._inner.close()

    def __repr__(self) -> str:
        return f"_KeyTransport(inner={self._inner!r}, key={MASK})"


class CustomsClient:
    """HTTP access to the customs API: key handling, retries, XML parsing, error mapping.

    ``service_key`` defaults to ``$KCS_SERVICE_KEY``. ``transport`` replaces the network (tests
    pass ``httpx.MockTransport``). Failed calls (HTTP 5xx, transport errors) are tried
    ``attempts`` times in all, waiting ``base_delay * 2**k`` seconds between tries.
    """

    def __init__(
        self,
        service_key: str | None = None,
        *,
        base_url: str = BASE_URL,
        transport: httpx.BaseTransport | None = None,
        attempts: int = 4,
        base_delay: float = 1.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        raw = os.environ.get(KEY_ENV, "") if service_key is None else service_key
        raw = raw.strip()
        if not raw:
            raise CustomsAuthError(
                f"the customs API service key is missing: set the environment variable {KEY_ENV} "
                "to the key issued by data.go.kr for the Korea Customs Service trade APIs"
            )
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if base_delay < 0:
            raise ValueError(f"base_delay must be >= 0, got {base_delay}")
        key = unquote(raw) if "%" in raw else raw  # the portal's "Encoding" key is percent-encoded
        self._secrets = sorted({raw, key, quote(key, safe=""), quote_plus(key), quote(key)}, key=len, reverse=True)
        self.base_url = base_url
        self.attempts = attempts
        self.base_delay = base_delay
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url,
            transport=_KeyTransport(transport if transport is not None else httpx.HTTPTransport(), key),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"CustomsClient(base_url={self.base_url!r}, service_key={MASK}, attempts={self.attempts})"

    def __enter__(self) -> CustomsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def mask(self, text: str) -> str:
        """``text`` with every form of the service key (raw, percent-encoded) replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def items(self, endpoint: str, params: Mapping[str, str]) -> list[dict[str, str]]:
        """The ``item`` elements of one call as {field: text} (the 총계 row included)."""
        what = describe_call(endpoint, params)
        log.info("%s: GET", what)
        content = self._get(endpoint, params, what)
        return _parse_items(content, what, self.mask)

    def _get(self, endpoint: str, params: Mapping[str, str], what: str) -> bytes:
        problem = ""
        unreachable = False  # the last failure happened before any connection was made
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http.get(endpoint, params=dict(params))
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {self.mask(str(err))}"
                unreachable = isinstance(err, UNREACHABLE_ERRORS)
            except httpx.HTTPError as err:
                raise CustomsApiError(f"{what}: {type(err).__name__}: {self.mask(str(err))}") from None
            else:
                _raise_gateway_error(response.content, what, endpoint.split("/")[0], self.mask)
                if response.status_code >= 500:
                    problem = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                    unreachable = False
                elif response.status_code >= 400:
                    raise CustomsApiError(
                        f"{what}: HTTP {response.status_code} {response.reason_phrase}: "
                        f"{self.mask(_snippet(response.content))}"
                    )
                else:
                    return response.content
            if attempt < self.attempts:
                delay = self.base_delay * 2 ** (attempt - 1)
                log.warning("%s: %s; retry %d of %d in %.1f s", what, problem, attempt, self.attempts - 1, delay)
                self._sleep(delay)
        tries = f"{self.attempts} attempt{'s' if self.attempts > 1 else ''}"
        if unreachable:
            host = httpx.URL(self.base_url).host
            raise CustomsUnreachableError(
                f"{what}: network unreachable: no connection to {host} after {tries} (last: {problem}); "
                "check this machine's internet connection, DNS and firewall, and data.customs.base_url"
            )
        raise CustomsServiceDownError(
            f"{what}: the service is down: failed after {tries} (last: {problem}); "
            "the customs API answered with errors or timed out, try again later"
        )


def describe_call(endpoint: str, params: Mapping[str, str]) -> str:
    """``customs API Itemtrade/getItemtradeList hsSgn=8542 202501-202512``: how messages name a call."""
    extra = " ".join(f"{k}={v}" for k, v in params.items() if k not in ("strtYymm", "endYymm", "serviceKey"))
    period = f"{params.get('strtYymm', '?')}-{params.get('endYymm', '?')}"
    return " ".join(part for part in ("customs API", endpoint, extra, period) if part)


def month_spans(start: str, end: str) -> list[tuple[str, str]]:
    """Split ``start``..``end`` (YYYYMM, inclusive) into calls of at most 12 months."""
    first, last = _yyyymm(start, "start"), _yyyymm(end, "end")
    if first > last:
        raise ValueError(f"customs API: start {start} is after end {end}")
    spans = []
    while first <= last:
        stop = min(first + MAX_SPAN_MONTHS - 1, last)
        spans.append((first.strftime("%Y%m"), stop.strftime("%Y%m")))
        first = stop + 1
    return spans


def fetch_total(start: str, end: str, client: CustomsClient | None = None) -> pd.DataFrame:
    """National total exports (``unique_id`` ``total``) from ``Newtrade``."""
    with _ClientScope(client) as api:
        months = _fetch_months(api, NEWTRADE, {}, start, end)
    return _frame({"total": months}, "Newtrade", start, end)


def fetch_countries(
    countries: Mapping[str, str] | None, start: str, end: str, client: CustomsClient | None = None
) -> pd.DataFrame:
    """Exports by destination from ``nationtrade``: ``countries`` maps ``destination:<slug>``
    to the ISO 3166 alpha-2 code (None = :data:`DEFAULT_COUNTRIES`)."""
    countries = dict(DEFAULT_COUNTRIES if countries is None else countries)
    if not countries:
        raise ValueError("fetch_countries: no country given")
    for uid, code in countries.items():
        if not uid.startswith("destination:") or uid == "destination:":
            raise ValueError(f"fetch_countries: series id {uid!r} must look like 'destination:<slug>'")
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{2}", code):
            raise ValueError(f"fetch_countries: {uid}: country code {code!r} is not an ISO 3166 alpha-2 code like 'CN'")
    with _ClientScope(client) as api:
        series = {
            uid: _fetch_months(api, NATIONTRADE, {"cntyCd": code}, start, end, keep=_same_country(code))
            for uid, code in countries.items()
        }
    return _frame(series, "nationtrade", start, end)


def fetch_items(
    hs_to_item: Mapping[str, Sequence[str]], start: str, end: str, client: CustomsClient | None = None
) -> pd.DataFrame:
    """Exports by item from ``Itemtrade``: each ``item:<slug>`` is the sum of its HS codes
    (2, 4, 6 or 10 digits, none a prefix of another in the same item, which would count
    twice). A month enters an item only if every one of its codes reported it."""
    _check_hs_mapping(hs_to_item)
    series: dict[str, dict[pd.Timestamp, float]] = {}
    with _ClientScope(client) as api:
        for uid, codes in hs_to_item.items():
            per_code = {
                code: _fetch_months(api, ITEMTRADE, {"hsSgn": code}, start, end, keep=_under_hs(code)) for code in codes
            }
            common = set.intersection(*(set(m) for m in per_code.values()))
            partial = sorted(set.union(*(set(m) for m in per_code.values())) - common)
            if partial:
                log.warning(
                    "customs API Itemtrade %s: months left out because not every HS code (%s) reported them: %s",
                    uid,
                    ", ".join(codes),
                    ", ".join(m.strftime("%Y-%m") for m in partial),
                )
            series[uid] = {m: sum(per_code[c][m] for c in codes) for m in sorted(common)}
    return _frame(series, "Itemtrade", start, end)


# ---------------------------------------------------------------------------------- flash (10/20-day)
class CustomsFlashUnavailableError(CustomsApiError):
    """The open API has no documented 10-day / 20-day export endpoint (the flash figures)."""


#: the endpoints the customs open API documents (docs/SOURCES.md): every one returns whole months
DOCUMENTED_ENDPOINTS: tuple[str, ...] = (ITEMTRADE, "nitemtrade/getNitemtradeList", NATIONTRADE, NEWTRADE)
FLASH_UNAVAILABLE = (
    "customs API: the open API documents no 10-day or 20-day export endpoint (its endpoints, "
    f"{', '.join(DOCUMENTED_ENDPOINTS)}, return whole months only), so the flash figures cannot come from it; "
    "run the flash-nowcast flow with data.source embedded (data/indicators_monthly.csv) or csv "
    "(data.indicators_path: a CSV in the indicator format)"
)


def fetch_flash(start: str, end: str, client: CustomsClient | None = None) -> pd.DataFrame:
    """The customs flash (exports of days 1-10 and 1-20) as indicator rows: NOT AVAILABLE. The
    customs service publishes the flash as press releases on the 11th and 21st, but the open API
    (docs/SOURCES.md: Itemtrade, nitemtrade, nationtrade, Newtrade) documents no endpoint for it.
    Raises :class:`CustomsFlashUnavailableError` (one line, no call made, no key read) so that the
    ``customs_api`` source of the flash flow fails clearly instead of guessing an endpoint; a
    documented endpoint belongs here, returning rows validated by
    :func:`features.contract.validate_indicators`."""
    raise CustomsFlashUnavailableError(FLASH_UNAVAILABLE)


# ---------------------------------------------------------------------------------- helpers
class _ClientScope:
    """Use the given client, or open one from the environment and close it afterwards."""

    def __init__(self, client: CustomsClient | None):
        self._given = client
        self._own: CustomsClient | None = None

    def __enter__(self) -> CustomsClient:
        if self._given is not None:
            return self._given
        self._own = CustomsClient()
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


def _yyyymm(value: str, name: str) -> pd.Period:
    text = str(value).strip()
    if not re.fullmatch(r"\d{6}", text) or not 1 <= int(text[4:]) <= 12:
        raise ValueError(f"customs API: {name} {value!r} is not a month in the form YYYYMM (e.g. 202501)")
    return pd.Period(year=int(text[:4]), month=int(text[4:]), freq="M")


def _check_hs_mapping(hs_to_item: Mapping[str, Sequence[str]]) -> None:
    if not hs_to_item:
        raise ValueError("fetch_items: hs_to_item is empty (config key data.customs.hs_to_item)")
    for uid, codes in hs_to_item.items():
        if not uid.startswith("item:") or uid == "item:":
            raise ValueError(f"fetch_items: series id {uid!r} must look like 'item:<slug>'")
        if isinstance(codes, str) or not codes:
            raise ValueError(f"fetch_items: {uid}: expected a non-empty list of HS codes, got {codes!r}")
        for code in codes:
            if not isinstance(code, str) or not code.isdigit() or len(code) not in HS_CODE_LENGTHS:
                raise ValueError(
                    f"fetch_items: {uid}: HS code {code!r} must be a string of 2, 4, 6 or 10 digits (quote it in YAML)"
                )
        for a in codes:
            for b in codes:
                if a is not b and b.startswith(a):
                    raise ValueError(f"fetch_items: {uid}: HS code {b} lies inside {a}: it would be counted twice")


def _under_hs(prefix: str) -> Callable[[dict[str, str]], bool]:
    def keep(item: dict[str, str]) -> bool:
        code = re.sub(r"\D", "", item.get("hsCode") or item.get("hsCd") or "")
        return code == "" or code.startswith(prefix)

    return keep


def _same_country(iso: str) -> Callable[[dict[str, str]], bool]:
    def keep(item: dict[str, str]) -> bool:
        code = (item.get("statCd") or "").strip().upper()
        return code in ("", "-", iso)

    return keep


def _fetch_months(
    api: CustomsClient,
    endpoint: str,
    params: Mapping[str, str],
    start: str,
    end: str,
    keep: Callable[[dict[str, str]], bool] = lambda item: True,
) -> dict[pd.Timestamp, float]:
    """Monthly ``expDlr`` sums over every 12-month call of ``start``..``end``."""
    months: dict[pd.Timestamp, float] = {}
    for first, last in month_spans(start, end):
        call = {"strtYymm": first, "endYymm": last, **params}
        what = describe_call(endpoint, call)
        lo, hi = parse_month(first), parse_month(last)
        for number, item in enumerate(api.items(endpoint, call), start=1):
            year = item.get("year", "")
            if year == TOTAL_ROW_YEAR or not keep(item):
                continue
            try:
                month = parse_month(year)
            except ValueError:
                raise CustomsApiError(
                    f"{what}: item {number}: field year {year!r} is not a month (expected YYYY.MM)"
                ) from None
            value = _number(item.get("expDlr"), what, number)
            if not lo <= month <= hi:
                log.warning("%s: item %d for %s lies outside the requested months: ignored", what, number, year)
                continue
            months[month] = months.get(month, 0.0) + value
    return months


def _number(text: str | None, what: str, number: int) -> float:
    if text is None:
        raise CustomsApiError(f"{what}: item {number} has no expDlr field (exports in USD)")
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise CustomsApiError(f"{what}: item {number}: field expDlr {text!r} is not a number") from None


def _frame(series: Mapping[str, Mapping[pd.Timestamp, float]], api: str, start: str, end: str) -> pd.DataFrame:
    for uid, months in series.items():
        if not months:
            log.warning("customs API %s %s-%s: no month returned for %s", api, start, end, uid)
    rows = [(uid, month, value) for uid, months in series.items() for month, value in sorted(months.items())]
    frame = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
    frame["source"] = f"customs-api:{api}"
    locations = [f"({uid}, {month:%Y-%m})" for uid, month, _ in rows]
    return validate_frame(frame, f"customs API {api} {start}-{end}", locations=locations)


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content.decode("utf-8", errors="replace").strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def _raise_gateway_error(content: bytes, what: str, api: str, mask: Callable[[str], str]) -> None:
    """A gateway refusal (root ``OpenAPI_ServiceResponse``) -> the matching error; else nothing."""
    if b"OpenAPI_ServiceResponse" not in content:
        return
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return
    if root.tag != "OpenAPI_ServiceResponse":
        return
    code = (root.findtext("cmmMsgHeader/returnReasonCode") or "").strip()
    auth = (root.findtext("cmmMsgHeader/returnAuthMsg") or "").strip()
    err = (root.findtext("cmmMsgHeader/errMsg") or "").strip()
    said = mask(" / ".join(part for part in (err, auth) if part) or "no message")
    if code == "30":
        raise CustomsAuthError(
            f"{what}: the service key in {KEY_ENV} is not registered for this API (gateway code 30: {said}). "
            f"Apply for the {api} API on data.go.kr with this key (a new approval can take an hour to reach the "
            "gateway) and check that the key is copied exactly as issued."
        )
    if code == "22":
        raise CustomsQuotaError(
            f"{what}: the daily call quota of this API is used up (gateway code 22: {said}). "
            "Try again after midnight KST when the quota resets, ask data.go.kr for a larger quota, "
            "or fetch fewer series or a shorter period (one call per 12 months per series)."
        )
    raise CustomsApiError(f"{what}: the gateway refused the call (gateway code {code or '?'}: {said})")


def _parse_items(content: bytes, what: str, mask: Callable[[str], str]) -> list[dict[str, str]]:
    try:
        root = ET.fromstring(content)
    except ET.ParseError as err:
        raise CustomsApiError(
            f"{what}: the answer is not valid XML ({err}); it starts with {mask(_snippet(content, 120))!r}"
        ) from None
    if root.tag != "response":
        raise CustomsApiError(f"{what}: unexpected XML root <{root.tag}> (expected <response>)")
    code = root.findtext("header/resultCode")
    message = mask((root.findtext("header/resultMsg") or "").strip() or "no message")
    if code is None:
        raise CustomsApiError(f"{what}: the answer has no header/resultCode")
    code = code.strip()
    if code == "03":  # NODATA_ERROR: nothing for this period
        return []
    if code != "00":
        raise CustomsApiError(f"{what}: the service answered resultCode {code}: {message}")
    return [{child.tag: (child.text or "").strip() for child in item} for item in root.iterfind("body/items/item")]
