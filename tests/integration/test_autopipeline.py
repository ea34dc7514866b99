"""The call path's auto-pipeline on the real Redis: one batch a tick, replies in order, errors per command."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from services.common.autopipeline import AutoPipeline
from services.common.redisstore import make_async_redis
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

SCRIPT = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


async def test_concurrent_commands_share_one_batch_and_get_their_own_replies(stack: Stack) -> None:
    client = make_async_redis(stack.settings)
    pipeline = AutoPipeline(client, timeout_s=2.0, scripts={SHA: SCRIPT})
    key = f"fm:test:{{{uuid.uuid4().hex}}}:n"
    try:
        await client.script_load(SCRIPT)
        replies = await asyncio.gather(
            *(pipeline.execute("EVALSHA", SHA, 1, key, f"arg-{i}") for i in range(20))
        )
        assert pipeline.batches == 1
        assert [reply[1] for reply in replies] == [f"arg-{i}".encode() for i in range(20)]
        assert [reply[2] for reply in replies] == list(range(1, 21)), "sent and answered in order"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_an_error_reply_reaches_only_its_command(stack: Stack) -> None:
    client = make_async_redis(stack.settings)
    pipeline = AutoPipeline(client, timeout_s=2.0)
    key = f"fm:test:{{{uuid.uuid4().hex}}}:n"
    try:
        good = pipeline.execute("INCR", key)
        bad = pipeline.execute("INCRBY", key, "not a number")
        after = pipeline.execute("INCR", key)
        assert await good == 1
        with pytest.raises(ResponseError):
            await bad
        assert await after == 2, "the connection stays usable after an error reply"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_script_redis_does_not_hold_is_loaded_inside_the_batch(stack: Stack) -> None:
    client = make_async_redis(stack.settings)
    key = f"fm:test:{{{uuid.uuid4().hex}}}:n"
    script = f"-- {uuid.uuid4()}\n{SCRIPT}"  # never loaded: NOSCRIPT, as after a restart or failover
    sha = hashlib.sha1(script.encode()).hexdigest()
    try:
        with pytest.raises(NoScriptError):  # a script the pipeline does not know stays an error
            await AutoPipeline(client, timeout_s=2.0).execute("EVALSHA", sha, 1, key, "x")
        reply = await AutoPipeline(client, timeout_s=2.0, scripts={sha: script}).execute(
            "EVALSHA", sha, 1, key, "x"
        )
        assert reply == [key.encode(), b"x", 1]
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_refused_connection_fails_every_waiting_command(stack: Stack) -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    pipeline = AutoPipeline(client, timeout_s=2.0)
    results = await asyncio.gather(pipeline.execute("PING"), pipeline.execute("PING"), return_exceptions=True)
    assert all(isinstance(result, Exception) for result in results)
    await client.aclose()
