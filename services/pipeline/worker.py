"""The pipeline worker: a durable pull consumer on the INBOUND work queue (DESIGN.md "Platforms").

Per message: the rules decide (pure, `rules.py`), the message is counted once (`store.claim`), then a
built-in command or a chat turn runs, and the reply is sent through the edge holding the bot
(`platform.<id>.send`). Every command it sends has an id derived from the dedup id, so a redelivery
asks the chat engine again and gets the stored reply: the LLM is never called twice. Parts already
sent are skipped; a failed send leaves the message un-acked, to be redelivered and resent."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from bus import nats_conn, subjects
from bus.commands import BusTimeout, BusUnavailable, CommandClient
from schemas.envelope import Actor, CommandEnvelope, CommandReply
from schemas.platforms import InboundMessage, SendReply, SendRequest
from services.group_admin.domain import effective_config
from services.module import WorkerContext
from services.pipeline import rules, store
from services.pipeline.actions import Actions, Outgoing
from services.platforms import onebot
from services.worker_reads import worker_reads

log = logging.getLogger("chatbus.pipeline")
NAMESPACE = uuid.UUID("5f0b3c1e-6a43-4d55-9a3e-0c6a2b7f9d11")
ACK_WAIT = 30.0  # how long a message a killed worker held waits before another worker gets it
CHAT_TIMEOUT = 180.0
SEND_TIMEOUT = 15.0
_decode = msgspec.json.Decoder(InboundMessage).decode
_encode = msgspec.json.Encoder().encode
_send_reply = msgspec.json.Decoder(SendReply).decode


class Retry(Exception):
    """Leave the message for a redelivery (a send failed, the bus or a worker was away)."""


def command_id(dedup_id: str, step: str = "turn") -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{dedup_id}/{step}")


class Pipeline:
    def __init__(
        self,
        ctx: WorkerContext,
        jwt_secret: str,
        *,
        concurrency: int = 64,
        rng: rules.Rng | None = None,
        ack_wait: float = ACK_WAIT,
    ) -> None:
        self.ctx = ctx
        self.ack_wait = ack_wait
        self.pool = ctx.store.pool
        self.reads = worker_reads(ctx)
        self._config_doc: object = None
        self._config_builtins: dict[str, Any] = {}
        self.commands = CommandClient(ctx.nc, timeout=CHAT_TIMEOUT)
        self.actions = Actions(self.pool, self._command, jwt_secret)
        self.rng = rng  # tests pin the random-rate draw; else it is seeded by the message
        self.slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        # Turns of one conversation run one at a time in this worker (a user's two quick messages
        # are answered in order, each seeing the other in its history).
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def start(self) -> None:
        await nats_conn.ensure_streams(self.ctx.nc)
        js = self.ctx.nc.jetstream()
        # Create or update: `pull_subscribe` would keep an existing durable's ack wait unchanged.
        await js.add_consumer(
            subjects.INBOUND_STREAM,
            ConsumerConfig(
                durable_name=subjects.PIPELINE_CONSUMER,
                filter_subject=subjects.INBOUND_WILDCARD,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=20,
            ),
        )
        self.sub = await js.pull_subscribe_bind(durable=subjects.PIPELINE_CONSUMER, stream=subjects.INBOUND_STREAM)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5)
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                msgs = await self.sub.fetch(batch=32, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # bus reconnecting
                log.warning("pipeline fetch failed: %r", exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self.slots.acquire()
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.slots.release()

    async def _handle(self, msg: Msg) -> None:
        progress = asyncio.create_task(self._keep_alive(msg))
        try:
            await self.process(_decode(msg.data))
            await msg.ack()
        except msgspec.DecodeError:
            log.warning("pipeline: undecodable message on %s dropped", msg.subject)
            await msg.term()
        except Retry as exc:
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            log.warning("pipeline: %s (delivery %s), will retry", exc, delivered)
            await msg.nak(delay=min(0.5 * 2 ** max(delivered - 1, 0), 30.0))
        except asyncio.CancelledError:
            # A worker stopping hands the message back now rather than after the ack wait.
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Exception:
            log.exception("pipeline: message on %s failed", msg.subject)
            with contextlib.suppress(Exception):
                await msg.nak(delay=2.0)
        finally:
            progress.cancel()

    async def _keep_alive(self, msg: Msg) -> None:
        """A long turn tells JetStream it is still alive; a killed worker stops, and it is redelivered."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    # ---- one message ----

    def _config(self) -> dict[str, Any]:
        """The config as the rules read it, converted once per config version (read-only)."""
        cache = self.ctx.config
        if self._config_doc is not cache.document:
            self._config_doc = cache.document
            self._config_builtins = msgspec.to_builtins(cache.document)
        return self._config_builtins

    async def process(self, msg: InboundMessage) -> None:
        config = self._config()
        group = await self._group(msg, config)
        rng = self.rng or rules.seeded_rng(msg.dedup_id)
        verdict = rules.decide(msg, config, group, rng)
        usage = rules.usage_keys(msg, group) if verdict.action == "chat" else []
        if verdict.action == "ignore":
            await store.claim(self.pool, msg.dedup_id, msg.platform_id, usage, dt.date.today())
            return
        conversation = rules.conversation_id(msg, config["context"]["isolation"])
        # The claim reads the conversation's chosen preset along (one round trip for both).
        claimed = await store.claim(self.pool, msg.dedup_id, msg.platform_id, usage, dt.date.today(), conversation)
        refused, first, preset_id = claimed
        if verdict.action == "command":
            out = await self.actions.run(msg, verdict.text, conversation, config)
            if out is None:  # not a built-in: a chat message that starts with the prefix
                verdict = rules.Verdict("chat", text=msg.text)
            else:
                await self.deliver(msg, out, first=first)
                return
        if refused:
            await self.deliver(
                msg, [Outgoing(msg.message_type, self._target(msg), "今天的使用次数已用完，明天再来吧。")], first=first
            )
            return
        async with self._turn_lock(conversation):
            text = await self._chat(msg, verdict.text, conversation, group, preset_id, first=first)
        target = self._target(msg)
        parts = [Outgoing(msg.message_type, target, part) for part in rules.split_reply(text)]
        await self.deliver(msg, parts, first=first)

    @contextlib.asynccontextmanager
    async def _turn_lock(self, conversation: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation, (asyncio.Lock(), 0))
        self._locks[conversation] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation]
            if users <= 1:
                del self._locks[conversation]
            else:
                self._locks[conversation] = (lock, users - 1)

    async def _group(self, msg: InboundMessage, config: dict[str, Any]) -> dict[str, Any] | None:
        if msg.group_id is None:
            return None
        stored = await self.reads.group(msg.group_id)
        return effective_config(msg.group_id, stored["overrides"] if stored else {}, config)

    @staticmethod
    def _target(msg: InboundMessage) -> str:
        return msg.group_id if msg.message_type == "group" and msg.group_id else msg.user_id

    async def _command(self, msg: InboundMessage, domain: str, action: str, payload: dict[str, Any]) -> CommandReply:
        envelope = CommandEnvelope(
            command_id=command_id(msg.dedup_id, f"{domain}.{action}"),
            type=f"{domain}.{action}",
            actor=Actor(f"{msg.platform}:{msg.user_id}", "platform"),
            payload=payload,
        )
        try:
            async with asyncio.timeout(CHAT_TIMEOUT):  # (the bus client's own timeout when sent over NATS)
                local = await self.reads.call_local(f"{domain}.{action}", envelope)
            return local if local is not None else await self.commands.send(domain, action, envelope)
        except (BusUnavailable, BusTimeout, TimeoutError) as exc:
            raise Retry(f"{domain}.{action}: {exc!r}") from exc

    async def _chat(
        self,
        msg: InboundMessage,
        text: str,
        conversation: str,
        group: dict[str, Any] | None,
        preset_id: str | None,
        *,
        first: bool = False,
    ) -> str:
        payload = {
            "message": text,
            "conversation_id": conversation,
            "user_id": msg.user_id,
            "group_id": msg.group_id,
            "platform": "qq",
            "preset_id": preset_id,
            # The claim recorded this delivery as the message's first: the turn's command ids were
            # never used, so the engine skips looking its steps up (a redelivery looks them up).
            "first_try": first,
        }
        reply = await self._command(msg, "chat", "send", payload)
        if reply.ok:
            return str((reply.result or {}).get("response") or "…")
        error = reply.error
        if error is not None and error.code in ("TIMEOUT", "UNAVAILABLE"):
            raise Retry(f"chat turn: {error.code}")
        await store.count_error(self.pool, msg.platform_id)
        log.warning("pipeline: chat turn for %s failed: %s", msg.dedup_id, error)
        return "抱歉，现在无法回复，请稍后再试。"

    async def deliver(self, msg: InboundMessage, parts: list[Outgoing], *, first: bool = False) -> None:
        """Send the parts not yet sent for this message (on its first delivery: none); in groups the
        first one quotes it."""
        done = 0 if first else await store.sent_parts(self.pool, msg.dedup_id)
        for index, part in enumerate(parts):
            if index < done:
                continue
            quote = msg.message_id if part.message_type == "group" and index == 0 and part.quote else None
            action, params = onebot.send_params(part.message_type, part.target, onebot.text_message(part.text, quote))
            if part.message_type == "private" and msg.group_id is not None:
                params["group_id"] = int(msg.group_id) if msg.group_id.isdigit() else msg.group_id
            request = SendRequest(action=action, params=params, timeout=SEND_TIMEOUT)
            try:
                raw = await self.ctx.nc.request(
                    subjects.platform_send(msg.platform_id), _encode(request), timeout=SEND_TIMEOUT + 2
                )
                reply = _send_reply(raw.data)
            except Exception as exc:  # no edge holds the bot now, or it did not answer
                await store.count_error(self.pool, msg.platform_id)
                raise Retry(f"send to platform {msg.platform_id}: {exc!r}") from exc
            if not reply.ok:
                await store.count_error(self.pool, msg.platform_id)
                if reply.code in ("UNAVAILABLE", "TIMEOUT"):
                    raise Retry(f"send to platform {msg.platform_id}: {reply.code} {reply.message}")
                # Refused by the bot (muted, not a friend): resending would fail the same way.
                log.warning("platform %s refused a send: %s %s", msg.platform_id, reply.code, reply.message)
            await store.mark_sent(self.pool, msg.dedup_id, msg.platform_id, index + 1, counted=reply.ok)
