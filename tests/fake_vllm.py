"""In-process stand-ins for vLLM replicas, for routing tests through LiteLLM's real router.

Each replica runs `slots` sequences at once (vLLM's `max_num_seqs`) and queues the rest (what
vLLM reports as `vllm:num_requests_waiting`); an answer streams `max_tokens` chunks,
`seconds_per_token` apart, in the OpenAI chat-completions format LiteLLM's `hosted_vllm`
provider reads. A request whose messages contain POISON gets a 500, as vLLM answers a request
its engine fails on. Every arrival records the requests in flight at every replica of the fleet at
that moment, so a test can tell whether the router chose the least loaded one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

POISON = "a request vLLM fails on"


@dataclass
class Arrival:
    replica: str
    in_flight: dict[str, int]  # replica -> running + waiting, just before this request joined


@dataclass
class Fleet:
    replicas: list[FakeReplica] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def in_flight(self) -> dict[str, int]:
        return {replica.name: replica.running + replica.waiting for replica in self.replicas}

    def served(self) -> dict[str, int]:
        return {replica.name: replica.served for replica in self.replicas}


class FakeReplica:
    def __init__(self, fleet: Fleet, name: str, *, slots: int, seconds_per_token: float):
        self.fleet, self.name = fleet, name
        self.seconds_per_token = seconds_per_token
        self.slots = asyncio.Semaphore(slots)
        self.running = self.waiting = self.served = 0
        self.runner: web.AppRunner | None = None
        fleet.replicas.append(self)

    def reset(self) -> None:
        self.served = 0

    async def start(self) -> str:
        """Listens on a free local port; returns the base URL (…/v1)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1"
        self.fleet.urls.append(url)
        return url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _chunk(self, model: str, delta: dict, finish: str | None = None, tokens: int = 0) -> bytes:
        chunk = {"id": "fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if finish is not None:
            chunk["usage"] = {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if POISON in json.dumps(body["messages"]):  # a request this server fails on
            return web.json_response({"error": {"message": "engine error", "type": "InternalServerError"}},
                                     status=500)
        tokens = int(body.get("max_tokens") or 1)
        self.fleet.arrivals.append(Arrival(self.name, self.fleet.in_flight()))
        self.waiting += 1
        async with self.slots:
            self.waiting -= 1
            self.running += 1
            try:
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                for index in range(tokens):
                    await asyncio.sleep(self.seconds_per_token)
                    await response.write(self._chunk(body["model"], {
                        "role": "assistant", "content": self.name if index == 0 else "."}))
                await response.write(self._chunk(body["model"], {}, "stop", tokens))
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                self.served += 1
                return response
            finally:
                self.running -= 1
