"""Measure what catalog validation adds per submit request.

Run: ``.venv/bin/python bench/validation_bench.py [iterations]``. Prints the mean
time per request of the validate stage (JSON parse, schema and cross-field
checks, inline image header checks; no URL preflight, which is network-bound)
for a typical text-to-video body, a typical image-to-video body with a data-URL
first frame, and a mix of one valid body per catalog model.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy.catalog.loader import load_catalog
from proxy.catalog.validation import BodyValidator
from proxy.context import RequestContext, RouteKind
from proxy.errors import InvalidInput
from proxy.stages.validate import ValidateStage


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + crc + b"\x00" * 50_000


FRAME = "data:image/png;base64," + base64.b64encode(_png(1280, 720)).decode()
T2V = {
    "prompt": "a red fox running through fresh snow, cinematic",
    "duration": 6,
    "resolution": "768P",
}
I2V = {"prompt": "the fox turns its head", "first_frame_image": FRAME, "duration": 6}


async def measure(stage: ValidateStage, cases: list[tuple[str, bytes]], iterations: int) -> float:
    refused = 0
    start = time.perf_counter()
    for _ in range(iterations):
        for slug, raw in cases:
            ctx = RequestContext(
                "r",
                "c",
                RouteKind.SUBMIT,
                0.0,
                0.0,
                requested_slug=slug,
                pinned_slug=slug,
                body=raw,
            )
            try:
                await stage(ctx)
            except InvalidInput as exc:
                refused += 1
                if refused == 1:
                    print(slug, exc.message, exc.details)
    elapsed = time.perf_counter() - start
    if refused:
        raise SystemExit(f"{refused} benchmark bodies were refused")
    return elapsed / (iterations * len(cases))


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    t0 = time.perf_counter()
    catalog = load_catalog()
    stage = ValidateStage(catalog, BodyValidator(catalog))
    startup = time.perf_counter() - t0
    mixed: list[tuple[str, bytes]] = []
    for spec in catalog:
        body: dict[str, object] = {}
        media = {m.field: m for m in spec.media}
        wanted = list(spec.json_schema.get("required", []))
        wanted += [
            r.fields[0] for r in spec.rules.values() if r.category == "Missing required parameter"
        ]
        for name in wanted:
            value: object = "a red fox"
            if name in media:
                value = FRAME if media[name].media == "image" else "https://cdn.example.com/v.mp4"
                value = [value] if media[name].many else value
            body[name] = value
        mixed.append((spec.slug, json.dumps(body).encode()))
    suites = {
        "t2v (hailuo-2.3-t2v)": [("minimax/hailuo-2.3-t2v", json.dumps(T2V).encode())],
        "i2v + 67 KB data-URL frame (hailuo-2.3-i2v)": [
            ("minimax/hailuo-2.3-i2v", json.dumps(I2V).encode())
        ],
        f"mix of all {len(catalog)} models": mixed,
    }
    print(f"catalog load + validator compile: {startup * 1000:.1f} ms (once, at start-up)")
    for name, cases in suites.items():
        asyncio.run(measure(stage, cases, max(1, iterations // 10)))  # warm-up
        per_request = asyncio.run(measure(stage, cases, iterations))
        print(f"{name}: {per_request * 1e6:.1f} us per request")


if __name__ == "__main__":
    main()
