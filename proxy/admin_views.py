"""How the admin API shows a job: the record, with money also in dollars."""

from __future__ import annotations

import dataclasses
from typing import Any

from proxy.money import optional_sample
from proxy.stores.records import JobRecord


def job_json(job: JobRecord) -> dict[str, Any]:
    doc = dataclasses.asdict(job)
    doc["status"] = job.status.value
    doc["history"] = [dataclasses.asdict(change) for change in job.history]
    doc["output_urls"] = list(job.output_urls)
    for key in ("estimated_cost_micros", "final_cost_micros"):
        micros = doc.get(key)
        doc[key.replace("_micros", "_usd")] = optional_sample(micros)
    return doc
