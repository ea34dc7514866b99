"""AdminService on grpc.aio: redress and list management (allow/deny entries) and Explain.

It listens on its own port only when FRAUDMESH_ADMIN_TOKEN(_FILE) is set; every call needs
``authorization: Bearer``. Plaintext is refused anywhere but loopback (settings fail at start-up);
elsewhere it needs mutual TLS (``admin_tls``). The actor recorded for a change is the authenticated
principal (the client certificate's CN, else the token's principal), never a field the client fills
in. Numbers are normalised and pseudonymised here; Redis sees only pseudonyms.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Final

import grpc
import redis.asyncio as aioredis
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import admin_pb2, admin_pb2_grpc
from services.common import keys
from services.common.grpcserver import ServerTls
from services.common.phone import InvalidNumberError, normalize
from services.common.pseudonym import Pseudonymizer
from services.common.settings import token_principals
from services.decision import lists
from services.decision.settings import DecisionSettings

log = logging.getLogger(__name__)

# KEYS: lists hash; ARGV: field, entry JSON, TTL seconds. The key lives as long as its latest entry.
PUT_ENTRY: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('TTL', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Redress and list management; every call authenticated with the configured bearer token."""

    def __init__(self, settings: DecisionSettings, redis: aioredis.Redis) -> None:
        assert settings.admin_token is not None
        self._principals = [
            (b"Bearer " + token, name) for token, name in token_principals(settings.admin_token).items()
        ]
        self._settings = settings
        self._redis = redis
        self._put = redis.register_script(PUT_ENTRY)
        self._pseudonymize = Pseudonymizer(settings.pseudonym_key)

    async def _authorize(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """The authenticated principal ("cert:<CN>" under mTLS, else "token:<name>"), or abort."""
        supplied = dict(context.invocation_metadata() or ()).get("authorization", "")
        value = supplied.encode() if isinstance(supplied, str) else bytes(supplied)
        principal = ""
        for token, name in self._principals:  # compare with every token: no early exit to time
            if hmac.compare_digest(value, token):
                principal = f"token:{name}"
        if not principal:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
        names: Any = (context.auth_context() or {}).get("x509_common_name") or ()
        for name in names:
            text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            return "cert:" + text[:200]
        return principal

    async def _pseudonym(self, tenant: str, number: str, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        region = self._settings.region_for(tenant) if tenant else self._settings.default_region
        try:
            return self._pseudonymize(normalize(number, region, allow_unallocated=True).canonical)
        except InvalidNumberError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"number: {exc.reason.value}")
            raise  # unreachable: abort raises

    async def PutListEntry(  # noqa: N802 - generated name
        self, request: admin_pb2.PutListEntryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListEntry:
        actor = await self._authorize(context)
        if request.kind not in lists.KIND_NAMES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "kind must be ALLOW or DENY")
        if not 1 <= request.ttl_s <= lists.MAX_TTL_S:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ttl_s must be 1..{lists.MAX_TTL_S}")
        if not request.reason.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reason is required for the audit trail")
        pseudonym = await self._pseudonym(request.tenant, request.number, context)
        entry = lists.entry_json(request.ttl_s, request.reason[:500], actor, on_behalf_of=request.actor[:200])
        await self._put(
            keys=[keys.lists_key(pseudonym)],
            args=[lists.field(request.kind, request.tenant), entry, request.ttl_s],
        )
        log.info(
            "list entry put",
            extra={
                "kind": lists.KIND_NAMES[request.kind],
                "tenant": request.tenant,
                "pseudonym": pseudonym,
                "actor": actor,
            },
        )
        return _entry(request.tenant, pseudonym, request.kind, json.loads(entry))

    async def RemoveListEntry(  # noqa: N802 - generated name
        self, request: admin_pb2.RemoveListEntryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RemoveListEntryResponse:
        actor = await self._authorize(context)
        if request.kind not in lists.KIND_NAMES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "kind must be ALLOW or DENY")
        pseudonym = await self._pseudonym(request.tenant, request.number, context)
        removed = await self._redis.hdel(keys.lists_key(pseudonym), lists.field(request.kind, request.tenant))
        log.info(
            "list entry removed",
            extra={"kind": lists.KIND_NAMES[request.kind], "pseudonym": pseudonym, "actor": actor},
        )
        return admin_pb2.RemoveListEntryResponse(removed=bool(removed))

    async def Explain(  # noqa: N802 - generated name
        self, request: admin_pb2.ExplainRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ExplainResponse:
        await self._authorize(context)
        pseudonym = await self._pseudonym(request.tenant, request.number, context)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.lists_key(pseudonym))
            pipe.lrange(keys.decisions_key(pseudonym), 0, -1)
            held, recent = await pipe.execute()
        response = admin_pb2.ExplainResponse(pseudonym=pseudonym)
        for raw_field, raw_entry in held.items():
            name, _, tenant = (raw_field.decode() if isinstance(raw_field, bytes) else raw_field).partition(
                ":"
            )
            kind = {v: k for k, v in lists.KIND_NAMES.items()}.get(name)
            if kind is None:
                continue
            response.entries.append(
                _entry("" if tenant == lists.ANY_TENANT else tenant, pseudonym, kind, json.loads(raw_entry))
            )
        for raw in recent:
            item = json.loads(raw)
            summary = admin_pb2.DecisionSummary(
                call_id=item["call_id"],
                tenant=item.get("tenant", ""),
                action=item["action"],
                shadow_action=item.get("shadow_action", 0),
                score=item["score"],
                reason_codes=item["reasons"],
                model_version=item["model"],
                policy_version=item["policy"],
                degraded=item["degraded"],
            )
            summary.decided_at.FromMilliseconds(item["decided_ms"])
            response.recent.append(summary)
        return response


def _entry(tenant: str, pseudonym: str, kind: int, data: dict[str, Any]) -> admin_pb2.ListEntry:
    expires, created = Timestamp(), Timestamp()
    expires.FromMilliseconds(int(data["expires_ms"]))
    created.FromMilliseconds(int(data.get("created_ms", 0)))
    return admin_pb2.ListEntry(
        tenant=tenant,
        pseudonym=pseudonym,
        kind=kind,  # type: ignore[arg-type]
        expires_at=expires,
        created_at=created,
        reason=data.get("reason", ""),
        actor=data.get("actor", ""),
        on_behalf_of=data.get("on_behalf_of", ""),
    )


def admin_tls(settings: DecisionSettings) -> ServerTls | None:
    """Mutual TLS for the admin API when its files are set (required off loopback; see settings)."""
    if not settings.admin_tls_cert_file:
        return None
    return ServerTls.from_files(
        settings.admin_tls_cert_file, settings.admin_tls_key_file, settings.admin_tls_client_ca_file
    )
