"""One reading of a paid submit's outcome, shared by the handler and the dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.upstream.attempts import Outcome
from proxy.upstream.client import Reply, TransportFailure
from proxy.upstream.outcome import Verdict, read_outcome
from proxy.upstream.retry import Bucket, Failure

ACCEPTED = b'{"code":0,"data":{"task_id":"task-1","get_result":{"url":"x"}}}'


def answered(status: int, bucket: Bucket, body: bytes = b"{}") -> Outcome:
    reply = Reply(status, CIMultiDictProxy(CIMultiDict()), body, 0.01)
    return Outcome(bucket=bucket, attempts=1, upstream_seconds=0.01, reply=reply)


def failed(failure: Failure, bucket: Bucket) -> Outcome:
    return Outcome(bucket, 1, 0.0, failure=TransportFailure(failure, "connection reset"))


@pytest.mark.parametrize(
    ("outcome", "verdict", "detail"),
    [
        (answered(200, Bucket.SUCCESS, ACCEPTED), Verdict.ACCEPTED, "task task-1"),
        (answered(200, Bucket.SUCCESS, b"[]"), Verdict.UNKNOWN, "2xx answer without a usable"),
        (answered(200, Bucket.SUCCESS, b'{"data":{"task_id":"a b"}}'), Verdict.UNKNOWN, "2xx"),
        (failed(Failure.SENT_NO_RESPONSE, Bucket.UNKNOWN), Verdict.UNKNOWN, "did not answer"),
        (failed(Failure.CONNECT, Bucket.TRANSIENT), Verdict.NOT_SENT, "not sent"),
        (answered(429, Bucket.PERMANENT), Verdict.BUSY, "HTTP 429"),
        (answered(429, Bucket.TRANSIENT), Verdict.BUSY, "HTTP 429"),
        (answered(503, Bucket.TRANSIENT), Verdict.RETRY_LATER, "HTTP 503"),
        (answered(400, Bucket.PERMANENT), Verdict.REFUSED, "HTTP 400"),
        (answered(500, Bucket.UNKNOWN), Verdict.UNKNOWN, "HTTP 500"),
    ],
)
def test_each_outcome_has_one_verdict(outcome: Outcome, verdict: Verdict, detail: str) -> None:
    reading = read_outcome(outcome)
    assert reading.verdict is verdict
    assert detail in reading.detail
    assert reading.created_nothing == (
        verdict in (Verdict.NOT_SENT, Verdict.BUSY, Verdict.RETRY_LATER)
    )
    if verdict is Verdict.ACCEPTED:
        assert reading.task_id == "task-1"
        assert reading.doc is not None


def test_the_outcome_words_exist_once() -> None:
    """The handler and the dispatcher say what an outcome means through one module."""
    proxy = Path(__file__).resolve().parents[2] / "proxy"
    for words in ("did not answer (", "without a usable task id", "upstream answered HTTP"):
        holders = [p for p in proxy.rglob("*.py") if words in p.read_text()]
        assert [p.name for p in holders] == ["outcome.py"], words
