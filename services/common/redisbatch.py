"""Many Redis commands in one round trip: packed by hiredis, written at once on one pooled connection.

redis-py's asyncio client packs each argument in Python (~25 µs for a 50-argument EVALSHA here)
and its Pipeline object, with registered scripts, adds a ``SCRIPT EXISTS`` round trip per batch.
The hot paths — decision's auto-pipelined read, reputation's batch folds — send EVALSHA commands
this way instead: the same bytes on the wire (hiredis is redis-py's own C parser and packer),
replies read in order. An error reply is its own command's and leaves the connection usable; a
script Redis does not hold (NOSCRIPT after a restart or failover) is loaded from ``scripts`` and its
commands sent again; anything else drops the connection, whose state is then unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError


def script_sha(source: str) -> str:
    """Redis's id of a Lua script (what EVALSHA names)."""
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id, not security


async def send(
    client: aioredis.Redis, commands: Sequence[tuple[Any, ...]], scripts: Mapping[str, str] | None = None
) -> list[Any]:
    """Every command's reply in order (an error reply as its exception); ``scripts``: sha → source."""
    replies = await _round_trip(client, commands)
    missing = {
        command[1]
        for command, reply in zip(commands, replies, strict=True)
        if isinstance(reply, NoScriptError) and scripts is not None and command[1] in scripts
    }
    if missing and scripts is not None:
        for sha in missing:
            await client.script_load(scripts[sha])
        again = [i for i, command in enumerate(commands) if command[1] in missing]
        for i, reply in zip(again, await _round_trip(client, [commands[i] for i in again]), strict=True):
            replies[i] = reply
    return replies


async def _round_trip(client: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py 8
    try:
        await connection.send_packed_command(
            b"".join([hiredis.pack_command(command) for command in commands]), check_health=False
        )
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)
    return replies
