"""Redis clients with bounded, blocking connection pools and explicit timeouts.

redis.asyncio's default pool raises MaxConnectionsError under a burst; a BlockingConnectionPool of a
fixed size queues callers instead, and the socket timeout bounds every command so a slow Redis
degrades a decision rather than stalling it.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from services.common.settings import CommonSettings


def make_async_redis(settings: CommonSettings) -> aioredis.Redis:
    """An asyncio Redis client for services (bounded pool, per-command timeout)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_connect_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


def make_sync_redis(settings: CommonSettings, socket_timeout_s: float | None = None) -> redis.Redis:
    """A synchronous Redis client for tools and tests (bounded pool)."""
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_connect_timeout_s,
        socket_timeout=socket_timeout_s or max(settings.redis_timeout_s, 1.0),
        socket_connect_timeout=settings.redis_connect_timeout_s,
    )
    return redis.Redis(connection_pool=pool)
