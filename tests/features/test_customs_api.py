"""Customs API client: hand-built XML in the documented format, httpx.MockTransport, no network."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import httpx
import pandas as pd
import pytest
import respx

from exportcast.errors import ExportcastError
from features import customs_api
from features.contract import DataValidationError
from features.customs_api import (
    CustomsApiError,
    CustomsAuthError,
    CustomsClient,
    CustomsQuotaError,
    CustomsServiceDownError,
    CustomsUnreachableError,
    fetch_countries,
    fetch_items,
    fetch_total,
    month_spans,
)

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "FAKE+key/SECRET=="  # has the characters the portal's keys have, so encoded forms differ


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def monthly_xml(rows: list[tuple[str, str]], *, total_row: str | None = None, extra: str = "") -> bytes:
    """A success answer with one item per (year, expDlr)."""
    items = "".join(f"<item>{extra}<expDlr>{v}</expDlr><year>{y}</year></item>" for y, v in rows)
    if total_row is not None:
        items = f"<item><expDlr>{total_row}</expDlr><year>총계</year></item>" + items
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><header><resultCode>00</resultCode>'
        f"<resultMsg>NORMAL SERVICE.</resultMsg></header><body><items>{items}</items></body></response>"
    ).encode()


class Recorder:
    """A MockTransport handler that answers from a queue and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | bytes):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, bytes):
            return httpx.Response(200, content=answer)
        return answer


def client_for(handler, **kwargs) -> CustomsClient:
    kwargs.setdefault("base_delay", 0.0)
    return CustomsClient(KEY, transport=httpx.MockTransport(handler), **kwargs)


def test_fetch_items_sums_hs_codes_skips_grand_total_and_keeps_only_months_all_codes_report():
    rec = Recorder(fixture("itemtrade_8541_2025.xml"), fixture("itemtrade_8542_2025.xml"))
    frame = fetch_items({"item:semiconductors": ["8541", "8542"]}, "202501", "202503", client=client_for(rec))
    # Jan: 8541 (1000 + 250) + 8542 10000; Feb: 1750 + 20000; Mar: only 8542 reported -> a gap
    expected = pd.DataFrame(
        {
            "unique_id": ["item:semiconductors"] * 2,
            "ds": pd.to_datetime(["2025-01-01", "2025-02-01"]),
            "y": [11250.0, 21750.0],
            "source": ["customs-api:Itemtrade"] * 2,
        }
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert [dict(r.url.params) for r in rec.requests] == [
        {"strtYymm": "202501", "endYymm": "202503", "hsSgn": "8541", "serviceKey": KEY},
        {"strtYymm": "202501", "endYymm": "202503", "hsSgn": "8542", "serviceKey": KEY},
    ]
    assert all(
        str(r.url).startswith("https://apis.data.go.kr/1220000/Itemtrade/getItemtradeList?") for r in rec.requests
    )


def test_fetch_total_parses_months_and_skips_the_grand_total_row():
    rec = Recorder(monthly_xml([("2024.11", "50"), ("2024.12", "60"), ("2025.01", "70")], total_row="180"))
    frame = fetch_total("202411", "202501", client=client_for(rec))
    assert len(rec.requests) == 1
    assert frame["unique_id"].tolist() == ["total"] * 3
    assert frame["ds"].dt.strftime("%Y-%m").tolist() == ["2024-11", "2024-12", "2025-01"]
    assert frame["y"].tolist() == [50.0, 60.0, 70.0]
    assert frame["source"].unique().tolist() == ["customs-api:Newtrade"]


def test_month_spans_cover_the_period_in_calls_of_at_most_twelve_months():
    assert month_spans("202201", "202512") == [
        ("202201", "202212"),
        ("202301", "202312"),
        ("202401", "202412"),
        ("202501", "202512"),
    ]
    assert month_spans("202207", "202403") == [("202207", "202306"), ("202307", "202403")]
    assert month_spans("202505", "202505") == [("202505", "202505")]
    with pytest.raises(ValueError, match=r"^customs API: start 202512 is after end 202501$"):
        month_spans("202512", "202501")
    with pytest.raises(
        ValueError, match=r"^customs API: end '2025-01' is not a month in the form YYYYMM \(e\.g\. 202501\)$"
    ):
        month_spans("202401", "2025-01")
    with pytest.raises(ValueError, match=r"^customs API: start '202413' is not a month"):
        month_spans("202413", "202501")


def test_fetch_total_over_two_years_makes_two_calls():
    rec = Recorder(monthly_xml([("2024.12", "60")]), monthly_xml([("2025.01", "70")]))
    frame = fetch_total("202401", "202512", client=client_for(rec))
    assert [(r.url.params["strtYymm"], r.url.params["endYymm"]) for r in rec.requests] == [
        ("202401", "202412"),
        ("202501", "202512"),
    ]
    assert frame["y"].tolist() == [60.0, 70.0]
    assert rec.requests[0].url.path == "/1220000/Newtrade/getNewtradeList"


def test_fetch_countries_asks_per_country_and_ignores_rows_of_other_countries():
    rec = Recorder(
        monthly_xml([("2025.01", "100")], extra="<statCd>CN</statCd><statCdCntnKor1>중국</statCdCntnKor1>"),
        b"<response><header><resultCode>00</resultCode><resultMsg>OK</resultMsg></header><body><items>"
        b"<item><statCd>US</statCd><expDlr>200</expDlr><year>2025.01</year></item>"
        b"<item><statCd>JP</statCd><expDlr>999</expDlr><year>2025.01</year></item>"
        b"</items></body></response>",
    )
    frame = fetch_countries(
        {"destination:china": "CN", "destination:united_states": "US"}, "202501", "202501", client=client_for(rec)
    )
    assert [r.url.params["cntyCd"] for r in rec.requests] == ["CN", "US"]
    assert rec.requests[0].url.path == "/1220000/nationtrade/getNationtradeList"
    assert frame[["unique_id", "y"]].values.tolist() == [
        ["destination:china", 100.0],
        ["destination:united_states", 200.0],
    ]
    assert frame["source"].unique().tolist() == ["customs-api:nationtrade"]


def test_result_code_99_is_an_error_with_the_service_message():
    rec = Recorder(fixture("result_99.xml"))
    with pytest.raises(CustomsApiError) as info:
        fetch_total("202401", "202412", client=client_for(rec))
    assert str(info.value) == (
        "customs API Newtrade/getNewtradeList 202401-202412: the service answered resultCode 99: "
        "조회기간은 1년을 초과할 수 없습니다."
    )


def test_result_code_03_means_no_data():
    rec = Recorder(
        b"<response><header><resultCode>03</resultCode><resultMsg>NODATA_ERROR</resultMsg></header></response>"
    )
    with pytest.raises(
        DataValidationError,
        match=r"^customs API Newtrade 203001-203012: 1 problem found\n"
        r"customs API Newtrade 203001-203012: no data rows \(the frame is empty\)$",
    ):
        fetch_total("203001", "203012", client=client_for(rec))


def test_gateway_code_30_says_the_key_is_not_registered_and_what_to_do():
    rec = Recorder(httpx.Response(200, content=fixture("gateway_30.xml")))
    with pytest.raises(CustomsAuthError) as info:
        fetch_items({"item:ships": ["8901"]}, "202501", "202512", client=client_for(rec))
    assert str(info.value) == (
        "customs API Itemtrade/getItemtradeList hsSgn=8901 202501-202512: the service key in KCS_SERVICE_KEY is not "
        "registered for this API (gateway code 30: SERVICE ERROR / SERVICE_KEY_IS_NOT_REGISTERED_ERROR). Apply for "
        "the Itemtrade API on data.go.kr with this key (a new approval can take an hour to reach the gateway) and "
        "check that the key is copied exactly as issued."
    )
    assert len(rec.requests) == 1  # not retried


def test_gateway_code_22_says_the_quota_is_used_up_even_on_an_http_error_status():
    rec = Recorder(httpx.Response(429, content=fixture("gateway_22.xml")))
    with pytest.raises(CustomsQuotaError) as info:
        fetch_total("202501", "202512", client=client_for(rec))
    assert str(info.value) == (
        "customs API Newtrade/getNewtradeList 202501-202512: the daily call quota of this API is used up (gateway "
        "code 22: SERVICE ERROR / LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR). Try again after midnight KST "
        "when the quota resets, ask data.go.kr for a larger quota, or fetch fewer series or a shorter period (one "
        "call per 12 months per series)."
    )
    assert len(rec.requests) == 1


def test_malformed_xml_names_endpoint_and_period():
    rec = Recorder(b'{"response": {"header": {"resultCode": "00"}}}')
    with pytest.raises(CustomsApiError) as info:
        fetch_countries({"destination:japan": "JP"}, "202301", "202306", client=client_for(rec))
    assert str(info.value) == (
        "customs API nationtrade/getNationtradeList cntyCd=JP 202301-202306: the answer is not valid XML "
        "(not well-formed (invalid token): line 1, column 0); it starts with "
        '\'{"response": {"header": {"resultCode": "00"}}}\''
    )


def test_bad_item_fields_are_named():
    rec = Recorder(monthly_xml([("2025.01", "12x")]), monthly_xml([("January", "1")]))
    with pytest.raises(
        CustomsApiError,
        match=r"^customs API Newtrade/getNewtradeList 202501-202501: item 1: "
        r"field expDlr '12x' is not a number$",
    ):
        fetch_total("202501", "202501", client=client_for(rec))
    with pytest.raises(
        CustomsApiError,
        match=r"^customs API Newtrade/getNewtradeList 202501-202501: item 1: "
        r"field year 'January' is not a month \(expected YYYY\.MM\)$",
    ):
        fetch_total("202501", "202501", client=client_for(rec))


def test_http_500_is_retried_with_exponential_backoff_then_succeeds():
    waits: list[float] = []
    rec = Recorder(httpx.Response(500), httpx.ConnectError("connection refused"), monthly_xml([("2025.03", "7")]))
    frame = fetch_total("202503", "202503", client=client_for(rec, attempts=3, base_delay=0.5, sleep=waits.append))
    assert frame["y"].tolist() == [7.0]
    assert len(rec.requests) == 3
    assert waits == [0.5, 1.0]


def test_http_500_exhausted_says_the_service_is_down():
    rec = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(500))
    with pytest.raises(CustomsServiceDownError) as info:
        fetch_total("202501", "202512", client=client_for(rec, attempts=3))
    assert str(info.value) == (
        "customs API Newtrade/getNewtradeList 202501-202512: the service is down: failed after 3 attempts (last: "
        "HTTP 500 Internal Server Error); the customs API answered with errors or timed out, try again later"
    )
    assert isinstance(info.value, CustomsApiError) and isinstance(info.value, ExportcastError)
    assert len(rec.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno -2] Name or service not known"),  # DNS failure
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectError("[Errno 113] No route to host"),
        httpx.ConnectTimeout("timed out"),
        httpx.ProxyError("proxy refused"),
    ],
    ids=["dns", "refused", "no-route", "connect-timeout", "proxy"],
)
def test_no_connection_says_the_network_is_unreachable(failure):
    rec = Recorder(failure, failure)
    with pytest.raises(CustomsUnreachableError) as info:
        fetch_total("202501", "202512", client=client_for(rec, attempts=2))
    assert str(info.value) == (
        "customs API Newtrade/getNewtradeList 202501-202512: network unreachable: no connection to apis.data.go.kr "
        f"after 2 attempts (last: {type(failure).__name__}: {failure}); check this machine's internet connection, "
        "DNS and firewall, and data.customs.base_url"
    )
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadError("connection reset"),
    ],
    ids=["read-timeout", "protocol", "reset"],
)
def test_failure_after_connecting_says_the_service_is_down(failure):
    rec = Recorder(failure)
    with pytest.raises(
        CustomsServiceDownError,
        match=r"^customs API Newtrade/getNewtradeList 202501-202512: the service "
        rf"is down: failed after 1 attempt \(last: {type(failure).__name__}: {failure}\); ",
    ):
        fetch_total("202501", "202512", client=client_for(rec, attempts=1))


def test_the_last_failure_decides_down_or_unreachable():
    rec = Recorder(httpx.ConnectError("refused"), httpx.Response(503))
    with pytest.raises(CustomsServiceDownError, match=r"the service is down: .*\(last: HTTP 503 Service Unavailable\)"):
        fetch_total("202501", "202512", client=client_for(rec, attempts=2))
    rec = Recorder(httpx.Response(503), httpx.ConnectError("refused"))
    with pytest.raises(CustomsUnreachableError, match=r"network unreachable: .*\(last: ConnectError: refused\)"):
        fetch_total("202501", "202512", client=client_for(rec, attempts=2))


def test_a_refused_loopback_connection_through_the_real_transport_is_unreachable():
    """The real httpx transport against a loopback port nobody listens on (no network involved)."""
    import socket

    with socket.socket() as sock:  # a free port, closed again: connecting to it is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with CustomsClient(KEY, base_url=f"http://127.0.0.1:{port}/", attempts=1, base_delay=0) as client:
        with pytest.raises(
            CustomsUnreachableError,
            match=r"network unreachable: no connection to 127\.0\.0\.1 after 1 "
            r"attempt \(last: ConnectError: ",
        ):
            fetch_total("202501", "202501", client=client)


def test_http_4xx_is_not_retried():
    rec = Recorder(httpx.Response(404, text="not here"))
    with pytest.raises(
        CustomsApiError, match=r"^customs API Newtrade/getNewtradeList 202501-202512: HTTP 404 Not Found: not here$"
    ):
        fetch_total("202501", "202512", client=client_for(rec, attempts=3))
    assert len(rec.requests) == 1


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("KCS_SERVICE_KEY", raising=False)
    with pytest.raises(
        CustomsAuthError,
        match=r"^the customs API service key is missing: set the environment variable "
        r"KCS_SERVICE_KEY to the key issued by data\.go\.kr",
    ):
        fetch_total("202501", "202512")


def test_key_is_read_from_the_environment_and_an_encoded_key_is_decoded_once(monkeypatch):
    monkeypatch.setenv("KCS_SERVICE_KEY", "FAKE%2Bkey%2FSECRET%3D%3D")
    rec = Recorder(monthly_xml([("2025.01", "1")]))
    client = CustomsClient(transport=httpx.MockTransport(rec))
    client.items(customs_api.NEWTRADE, {"strtYymm": "202501", "endYymm": "202501"})
    assert rec.requests[0].url.params["serviceKey"] == KEY
    assert "serviceKey=FAKE%2Bkey%2FSECRET%3D%3D" in str(rec.requests[0].url)


def test_bad_hs_mappings_are_rejected_before_any_call():
    with pytest.raises(
        ValueError,
        match=r"^fetch_items: item:semiconductors: HS code 854231 lies inside 8542: "
        r"it would be counted twice$",
    ):
        fetch_items({"item:semiconductors": ["8542", "854231"]}, "202501", "202512", client=client_for(Recorder()))
    with pytest.raises(
        ValueError, match=r"^fetch_items: item:ships: HS code 8901 must be a string of 2, 4, 6 or 10 digits"
    ):
        fetch_items({"item:ships": [8901]}, "202501", "202512", client=client_for(Recorder()))
    with pytest.raises(ValueError, match=r"^fetch_items: series id 'semiconductors' must look like 'item:<slug>'$"):
        fetch_items({"semiconductors": ["8542"]}, "202501", "202512", client=client_for(Recorder()))


def test_the_service_key_appears_in_no_log_exception_or_repr(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx's included
    leaky = lambda request: httpx.ConnectError(f"cannot reach {request.url}", request=request)  # noqa: E731

    class Leaky(Recorder):
        def __call__(self, request):
            self.requests.append(request)
            raise leaky(request)

    texts: list[str] = []

    def provoke(answers, call, **kwargs):
        handler = answers if callable(answers) else Recorder(*answers)
        client = client_for(handler, **kwargs)
        texts.append(repr(client))
        with pytest.raises(Exception) as info:
            call(client)
        texts.append(str(info.value))
        texts.append("".join(traceback.format_exception(info.value)))

    total = lambda c: fetch_total("202501", "202512", client=c)  # noqa: E731
    echo = f"<response><header><resultCode>99</resultCode><resultMsg>bad key {KEY}</resultMsg></header></response>"
    provoke([fixture("gateway_30.xml")], total)
    provoke([fixture("gateway_22.xml")], total)
    provoke([fixture("result_99.xml")], total)
    provoke([echo.encode()], total)
    provoke([b"<broken " + KEY.encode()], total)
    provoke([httpx.Response(500)] * 2, total, attempts=2)
    provoke([httpx.Response(403, text=f"denied for {KEY}")], total)
    provoke(Leaky(), total, attempts=2)
    provoke([monthly_xml([("2025.01", "-5")])], total)  # negative value: the contract's error
    assert any(r.name == "httpx" and r.getMessage().startswith("HTTP Request: GET") for r in caplog.records)
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(caplog.text.splitlines())
    assert any(
        "ConnectError: cannot reach https://apis.data.go.kr/1220000/Newtrade/getNewtradeList" in t for t in texts
    )
    assert any("bad key ***" in t for t in texts)
    forms = {KEY, "FAKE%2Bkey%2FSECRET%3D%3D", "FAKE+key/SECRET", "SECRET"}
    leaks = [t for t in texts for form in forms if form in t]
    assert leaks == []


def test_the_real_http_transport_sends_the_key_only_on_the_wire():
    with respx.mock(assert_all_called=True) as router:
        route = router.get("https://apis.data.go.kr/1220000/Newtrade/getNewtradeList").mock(
            return_value=httpx.Response(200, content=monthly_xml([("2025.06", "42")]))
        )
        with CustomsClient(KEY, base_delay=0) as client:
            frame = fetch_total("202506", "202506", client=client)
    assert frame["y"].tolist() == [42.0]
    assert dict(route.calls.last.request.url.params) == {"strtYymm": "202506", "endYymm": "202506", "serviceKey": KEY}
