"""The documents a q- id answers with: the upstream's envelope, the id the client asked for."""

from __future__ import annotations

import json

from proxy.admission import answers
from proxy.context import RouteKind
from proxy.routing import classify
from proxy.stores.admission_records import is_queue_id

QID = "q-" + "ab" * 16


def test_the_queued_answer_has_the_upstream_shape() -> None:
    """status pending, the q- id, and a get_result URL through the proxy."""
    doc = json.loads(answers.queued_answer(QID, "minimax-hailuo-02-t2v", "https://proxy.example"))
    assert doc == {
        "code": 0,
        "message": "success",
        "data": {
            "status": "pending",
            "task_id": QID,
            "model_id": "minimax-hailuo-02-t2v",
            "get_result": {"method": "GET", "url": f"https://proxy.example/api/v1/tasks/{QID}"},
        },
    }


def test_a_dispatched_task_answers_for_the_queue_id() -> None:
    """The upstream's poll answer keeps everything but names the q- id."""
    body = json.dumps(
        {
            "code": 0,
            "message": "success",
            "data": {
                "status": "success",
                "task_id": "task-1",
                "result": {"resources": [{"url": "u"}]},
            },
        }
    ).encode()
    doc = json.loads(answers.relabel(body, "task-1", QID))
    assert doc["data"]["task_id"] == QID
    assert doc["data"]["result"] == {"resources": [{"url": "u"}]}
    assert answers.relabel(b"not json", "task-1", QID) == b"not json"


def test_upstream_refusal_messages_are_kept() -> None:
    """A definite refusal's message is what the q- poll says; a bare status is described."""
    body = b'{"code": 402, "message": "Insufficient balance: available $0.1"}'
    assert answers.upstream_message(body, 402) == "Insufficient balance: available $0.1"
    assert "HTTP 400" in answers.upstream_message(b"", 400)


def test_queue_ids_route_to_the_proxy_and_only_they_can_be_deleted() -> None:
    """GET and DELETE on a q- id are polls the proxy answers; DELETE elsewhere is 405."""
    assert is_queue_id(QID)
    assert not is_queue_id("q-123")
    assert not is_queue_id("task-" + "a" * 32)
    assert classify("DELETE", f"/api/v1/tasks/{QID}").kind is RouteKind.POLL
    refused = classify("DELETE", "/api/v1/tasks/task-1")
    assert refused.refusal is not None
    assert refused.refusal.status == 405
