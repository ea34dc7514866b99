"""The HTTP/JSON endpoint: the SIP front's semantics for switches whose scripts prefer HTTP.

``POST /v1/decide`` takes one CallSetup as JSON (the protobuf JSON mapping of
``fraudmesh.v1.CallSetup``: snake_case or lowerCamelCase names; ``event_time`` RFC 3339, default
now) and answers ``200`` with the decision and the SIP answer the redirect front would have sent:

    {"call_id": "…", "action": "LABEL", "cause": "decided",
     "status": 302, "reason": "Moved Temporarily", "contact": "sip:+8613…@core",
     "headers": {"P-Asserted-Identity": "\\"疑似诈骗\\" <tel:+86…;verstat=No-TN-Validation>", …},
     "decision": {…Decision…}, "origination": {…OriginationVerdict…}}

The top-level fields are flat so a routing script reads them without a JSON path (Kamailio's
``json_get_field``). Emergency calls and every failure answer ALLOW (``cause`` says why), as on
SIP. A body that is not a CallSetup → ``400 {"error": …}``; a missing or wrong bearer token (when
FRAUDMESH_HTTP_TOKEN is set) → ``401``. ``GET /healthz`` (alive) and ``GET /readyz`` (decision
reachable) serve the kubelet. Schema: docs/switchfront.md.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, Final

from aiohttp import web
from google.protobuf import json_format

from fraudmesh.v1 import call_pb2
from services.common.settings import token_principals
from services.switchfront import metrics
from services.switchfront.answer import CallView
from services.switchfront.callsetup import Trunks
from services.switchfront.front import Front
from services.switchfront.settings import SwitchFrontSettings

__all__ = ["MAX_BODY_BYTES", "make_app", "make_health_app"]

MAX_BODY_BYTES: Final = 64 * 1024
_FRONT: Final = web.AppKey("front", Front)


def make_health_app(front: Front) -> web.Application:
    """Only /healthz and /readyz: the plaintext health listener beside a mutual-TLS endpoint, for
    the kubelet's probes (which present no client certificate)."""
    app = web.Application()
    app[_FRONT] = front
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def make_app(front: Front, settings: SwitchFrontSettings) -> web.Application:
    """The aiohttp application (started by services.switchfront.service)."""
    tokens = (
        [b"Bearer " + token for token in token_principals(settings.http_token)]
        if settings.http_token is not None
        else []
    )

    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        if tokens and request.path.startswith("/v1/"):
            given = request.headers.get("Authorization", "").encode()
            matched = False
            for token in tokens:  # every token compared: no early exit to time
                matched |= hmac.compare_digest(given, token)
            if not matched:
                return web.json_response({"error": "a valid bearer token is required"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[authenticate])
    app[_FRONT] = front
    app.router.add_post("/v1/decide", decide)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def decide(request: web.Request) -> web.Response:
    """POST /v1/decide."""
    front = request.app[_FRONT]
    started = time.perf_counter()
    metrics.REQUESTS("http", "INVITE").inc()
    try:
        setup = _setup(await request.read(), front.trunks)
    except ValueError as exc:
        metrics.MALFORMED("http", "bad_json", "true").inc()
        return web.json_response({"error": str(exc)}, status=400)
    except web.HTTPRequestEntityTooLarge:
        metrics.MALFORMED("http", "too_large", "true").inc()
        return web.json_response({"error": f"the body is over {MAX_BODY_BYTES} bytes"}, status=413)
    answer, response = await front.decide(setup, _call_view(setup))
    metrics.ANSWER_SECONDS("http").observe(time.perf_counter() - started)
    metrics.ANSWERS("http", str(answer.status), answer.action, answer.cause.value).inc()
    body: dict[str, Any] = {
        "call_id": setup.call_id,
        "action": answer.action,
        "cause": answer.cause.value,
        "status": answer.status,
        "reason": answer.phrase,
        "contact": answer.contact,
        "headers": dict(answer.headers),
    }
    if response is not None:
        body["decision"] = json_format.MessageToDict(response.decision, preserving_proto_field_name=True)
        if response.HasField("origination"):
            body["origination"] = json_format.MessageToDict(
                response.origination, preserving_proto_field_name=True
            )
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, separators=(",", ":")), content_type="application/json"
    )


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the decision service is reachable."""
    ready = await request.app[_FRONT].client.ready(0.5)
    return web.json_response(
        {"status": "ready" if ready else "decision unreachable"}, status=200 if ready else 503
    )


def _setup(body: bytes, trunks: Trunks) -> call_pb2.CallSetup:
    """The CallSetup in a request body, completed from its trunk; ValueError naming what is wrong.

    A configured ``ingress_trunk_id`` fills the tenant, ingress kind and region the body leaves out
    (as the SIP front fills them from the trunks file).
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("the body must be one JSON object (a CallSetup)")
    setup = call_pb2.CallSetup()
    try:
        json_format.ParseDict(document, setup)
    except json_format.ParseError as exc:
        raise ValueError(f"not a CallSetup: {exc}") from None
    trunk = trunks.by_id.get(setup.ingress_trunk_id)
    if trunk is not None:
        setup.tenant = setup.tenant or trunk.tenant
        setup.ingress_kind = setup.ingress_kind or trunk.kind  # type: ignore[assignment]
        setup.ingress_region = setup.ingress_region or trunk.region
    if not setup.call_id or not setup.tenant:
        raise ValueError("call_id and tenant (or a configured ingress_trunk_id) are required")
    if not setup.HasField("event_time"):
        setup.event_time.FromNanoseconds(time.time_ns())
    return setup


def _call_view(setup: call_pb2.CallSetup) -> CallView:
    """What the answer refers to: the Request-URI (else the called number) and the caller's identity."""
    identity = setup.p_asserted_identity or setup.calling_number
    destination = setup.request_uri or setup.called_number
    return CallView(_as_uri(destination), _as_uri(identity) if identity else "", setup.display_name)


def _as_uri(value: str) -> str:
    text = value.strip().strip("<>")
    return text if ":" in text else f"tel:{text}"
