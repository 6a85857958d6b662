"""A synthetic pipeline team: mixed models, some bad inputs, some duplicates, some failures."""

from __future__ import annotations

import asyncio
import base64
import random
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TEAMS = ("studio-a", "studio-b", "research")
PROJECTS = ("trailers", "shorts", "ads")
PROMPTS = (
    "a red fox running through fresh snow at dawn",
    "a paper boat drifting down a rainy street, close-up",
    "timelapse of a city skyline from day to night",
    "a cat astronaut floating in a space station",
    "waves crashing on black volcanic sand, slow motion",
)


def tiny_png(width: int, height: int) -> str:
    """A valid PNG as a data URL (a real header; the pixels are one flat colour)."""
    raw = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    other: Counter[int] = field(default_factory=Counter)
    accepted_ids: list[str] = field(default_factory=list)


class Workload:
    """Clients that submit through the proxy the way a video pipeline would."""

    def __init__(self, base_url: str, seed: int) -> None:
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.tally = Tally()
        self._frame = tiny_png(640, 360)
        self._history: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self._polls: list[asyncio.Task[None]] = []

    def _request(self, n: int) -> tuple[str, dict[str, Any], dict[str, str]]:
        rng = self.rng
        team = rng.choice(TEAMS)
        headers = {
            "Authorization": f"Bearer demo-key-{team}",
            "X-Modellix-Team": team,
            "X-Modellix-Project": rng.choice(PROJECTS),
            "Idempotency-Key": f"demo-{n}",
        }
        prompt = rng.choice(PROMPTS)
        roll = rng.random()
        if roll < 0.10 and self._history:
            return rng.choice(self._history)  # a client retry: same key, same body
        if roll < 0.17:
            return (
                "minimax/hailuo",
                {"prompt": prompt, "duration": 10, "resolution": "1080P"},
                headers,
            )
        if roll < 0.20:
            return "kling/kling", {"prompt": prompt, "duration": 5, "fps": 60}, headers
        if roll < 0.22:
            return "openai/sora", {"prompt": prompt}, headers
        if roll < 0.29:
            return "minimax/hailuo", {"prompt": prompt + " [sim:task_failed]"}, headers
        if roll < 0.32:
            return "bytedance/seedance", {"prompt": prompt + " [sim:content_policy]"}, headers
        if roll < 0.42:
            return (
                "minimax/hailuo-i2v",
                {"first_frame_image": self._frame, "prompt": prompt},
                headers,
            )
        choices: list[tuple[str, dict[str, Any]]] = [
            ("minimax/hailuo", {"prompt": prompt, "duration": 6, "resolution": "768P"}),
            ("minimax/hailuo", {"prompt": prompt, "duration": 6, "resolution": "1080P"}),
            ("minimax/hailuo-human", {"prompt": prompt, "duration": 10}),
            ("bytedance/seedance", {"prompt": prompt}),
            ("kling/kling", {"prompt": prompt}),
            ("alibaba/wan", {"prompt": prompt}),
            ("bytedance/seedream", {"prompt": prompt}),
            # image models of Modellix's own clients; the last has no local spec (upstream-listed)
            ("google/nano-banana-2-lite", {"prompt": prompt}),
            ("openai/gpt-image-2", {"prompt": prompt, "size": "1024x1024"}),
            ("alibaba/qwen-image-plus", {"prompt": prompt}),
            # more providers and kinds the upstream lists, priced from its model list
            ("minimax/minimax-t2v-01", {"prompt": prompt}),
            ("vidu/vidu-q3-t2v", {"prompt": prompt, "duration": 4}),
            ("google/veo-3.1-fast-t2v", {"prompt": prompt, "duration": 4}),
            ("pixverse/pixverse-v5-t2v", {"prompt": prompt, "duration": 5}),
            ("bytedance/seedance-2.0-mini-t2v", {"prompt": prompt, "duration": 5}),
            ("alibaba/qwen-audio-3.0-tts-flash", {"text": prompt}),
            ("openai/whisper-1", {"audio_url": "https://example.com/standup.mp3?duration=42"}),
        ]
        slug, body = rng.choice(choices)
        return slug, body, headers

    async def client(
        self, session: aiohttp.ClientSession, worker: int, stop: asyncio.Event
    ) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            slug, body, headers = self._request(worker * 100_000 + n)
            await self._submit(session, slug, body, headers)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(0.2, 0.8))
            except TimeoutError:
                continue

    async def _submit(
        self,
        session: aiohttp.ClientSession,
        slug: str,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        self.tally.sent += 1
        try:
            async with session.post(
                f"{self.base_url}/api/v1/{slug}", json=body, headers=headers
            ) as resp:
                doc = await resp.json(content_type=None)
                status = resp.status
                replayed = resp.headers.get("Idempotent-Replayed") == "true"
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.tally.other[0] += 1
            return
        if replayed:
            self.tally.replayed += 1
        elif status == 200:
            self.tally.accepted += 1
            task_id = doc["data"]["task_id"]
            self.tally.accepted_ids.append(task_id)
            self._history.append((slug, body, headers))
            if self.rng.random() < 0.5:  # half the clients wait for their result themselves
                self._polls.append(
                    asyncio.get_running_loop().create_task(self._wait(session, task_id, headers))
                )
        elif status in (400, 402, 404, 422):
            self.tally.refused[str(doc.get("error_type", status))] += 1
        else:
            self.tally.other[status] += 1

    async def _wait(
        self, session: aiohttp.ClientSession, task_id: str, headers: dict[str, str]
    ) -> None:
        """Poll like ``modellix task wait``: every 2 s, until terminal (bounded)."""
        for _ in range(60):
            await asyncio.sleep(2)
            try:
                async with session.get(
                    f"{self.base_url}/api/v1/tasks/{task_id}", headers=headers
                ) as resp:
                    doc = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            if resp.status == 200 and doc.get("data", {}).get("status") in ("success", "failed"):
                return

    async def close(self) -> None:
        for task in self._polls:
            task.cancel()
        await asyncio.gather(*self._polls, return_exceptions=True)
