"""`PromClient.query_by`, the query behind every signal of a Prometheus round, against the answers a
loopback server sends: the compact answer Prometheus writes is read straight from its text, and
every answer that is not exactly that shape (escapes, other labels, NaN, warnings, an HTTP error, a
body that is not JSON) gives what the full JSON parse gives: the same figures, or the same refusal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from mlops_console.core.adapters import new_http_session
from mlops_console.core.promapi import PromClient, PromError
from tests._loopback import free_port, serve, stop_serving


class Answers:
    """Answers every query with `body` and `status`, as set by the test."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        answers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(answers.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answers.body)))
                self.end_headers()
                self.wfile.write(answers.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = serve(self.port, Handler)

    def stop(self) -> None:
        stop_serving(self._server)


@pytest.fixture(scope="module")
def answers() -> Iterator[Answers]:
    server = Answers()
    yield server
    server.stop()


def query_by(answers: Answers, body: bytes | str, status: int = 200) -> dict[str, float]:
    answers.body = body.encode() if isinstance(body, str) else body
    answers.status = status
    client = PromClient(f"http://127.0.0.1:{answers.port}", timeout=5.0)

    async def go() -> dict[str, float]:
        async with new_http_session() as http:
            return await client.query_by(http, "sum by (endpoint) (rate(x[1m]))", "endpoint")

    return asyncio.run(go())


def compact(series: list[tuple[dict[str, str], str]], extra: str = "") -> str:
    """An instant vector written as Prometheus writes it (no spaces), `extra` after `data`."""
    result = ",".join(
        '{"metric":' + json.dumps(labels, separators=(",", ":"), ensure_ascii=False) + ","
        f'"value":[1795976028.169,"{value}"]}}'
        for labels, value in series
    )
    return '{"status":"success","data":{"resultType":"vector","result":[' + result + "]}" + extra + "}"


def test_a_fleets_compact_answer_gives_every_endpoints_value(answers: Answers) -> None:
    series = [({"endpoint": f"e{i}"}, repr(i * 0.37 + 1e-9)) for i in range(2000)]
    series += [({"endpoint": "tiny"}, "1e-7"), ({"endpoint": "negative"}, "-0.5"), ({"endpoint": "é"}, "3")]
    body = compact(series)
    expected = {s["metric"]["endpoint"]: float(s["value"][1]) for s in json.loads(body)["data"]["result"]}
    assert query_by(answers, body) == expected
    assert query_by(answers, compact([])) == {}


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "1" + "0" * 400])
def test_values_that_are_no_figure_are_left_out(answers: Answers, value: str) -> None:
    body = compact([({"endpoint": "a"}, "1.5"), ({"endpoint": "odd"}, value), ({"endpoint": "b"}, "2")])
    assert query_by(answers, body) == {"a": 1.5, "b": 2.0}


def test_a_fleet_with_an_idle_endpoint_is_read_from_the_text_and_leaves_its_nan_out() -> None:
    """An endpoint without requests in the window has a NaN quantile in every latency answer: such an
    answer is still read from its text (sent on to the full parse as well, each round took both), and
    reads as the full parse reads it, a NaN never replacing an earlier series of the same endpoint."""
    from mlops_console.core.promapi import _vector_by_fast

    series = [({"endpoint": f"e{i}"}, repr(i * 0.37 + 1e-9)) for i in range(2000)]
    series += [({"endpoint": "idle"}, "NaN"), ({"endpoint": "e7"}, "+Inf"), ({"endpoint": "e8"}, "-Inf")]
    series += [({"endpoint": "late"}, "1" + "0" * 400), ({"endpoint": "e9"}, "NaN")]
    body = compact(series).encode()
    expected = {f"e{i}": i * 0.37 + 1e-9 for i in range(2000)}
    folded = _vector_by_fast(body, "endpoint")
    assert folded == expected and list(folded) == list(expected)


def test_escaped_labels_and_series_with_other_labels_are_read_as_json_says(answers: Answers) -> None:
    body = compact(
        [
            ({"endpoint": 'quo"te'}, "1"),
            ({"endpoint": "back\\slash"}, "2"),
            ({"endpoint": "c", "le": "0.5"}, "3"),
            ({"job": "no endpoint label"}, "4"),
        ]
    )
    assert query_by(answers, body) == {'quo"te': 1.0, "back\\slash": 2.0, "c": 3.0}
    spaced = json.dumps(json.loads(compact([({"endpoint": "d"}, "5")])))  # with spaces, as others write it
    assert query_by(answers, spaced) == {"d": 5.0}


TWO = compact([({"endpoint": "a"}, "1"), ({"endpoint": "b"}, "2")])


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (compact([({"endpoint": "a"}, "1")], ',"warnings":["store-2 is down"]'), 200, "partial answer"),
        (compact([({"endpoint": "a"}, "1")]), 503, "HTTP 503"),
        (TWO.replace('},{"metric"', '}x{"metric"'), 200, "not Prometheus' JSON"),
        (TWO.replace("},{", "}{"), 200, "not Prometheus' JSON"),
        (compact([({"endpoint": "aZZ"}, "1")]).replace("ZZ", "\x01"), 200, "not Prometheus' JSON"),
        (compact([({"endpoint": "aZZ"}, "1")]).encode().replace(b"ZZ", b"\xff"), 200, "not Prometheus' JSON"),
    ],
)
def test_answers_the_full_parse_refuses_are_refused(
    answers: Answers, body: bytes | str, status: int, problem: str
) -> None:
    with pytest.raises(PromError, match=problem):
        query_by(answers, body, status)
