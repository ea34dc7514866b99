"""The switch front's process: SIP over UDP/TCP(/TLS) and HTTP/JSON in front of Decide.

Start-up reads the trunks file and the policy's extra emergency numbers (a bad file is fatal, with
its reason), opens the channel to decision, and only then listens. SIGTERM closes the listeners
and lets answers in flight finish (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import sys
from pathlib import Path
from typing import Final

import yaml
from aiohttp import web

from services.common import eventloop
from services.common.grpcserver import until_signalled
from services.common.settings import load
from services.common.telemetry import setup_telemetry
from services.decision.verification import ConfigurationError as DecisionConfigurationError
from services.switchfront.answer import AnswerConfig
from services.switchfront.callsetup import TrunkError, Trunks
from services.switchfront.client import DecisionClient, Decisions, InProcessDecisions
from services.switchfront.front import Front, TransactionCache
from services.switchfront.jsonapi import make_app, make_health_app
from services.switchfront.settings import SwitchFrontSettings
from services.switchfront.transports import SipDatagram, serve_stream, start_udp

__all__ = ["Running", "emergency_numbers", "run_worker", "start"]

log = logging.getLogger(__name__)
REPO_ROOT: Final = Path(__file__).resolve().parents[2]


class ConfigurationError(Exception):
    """A file the front needs is missing or wrong; the message says which and why."""


@dataclasses.dataclass
class Running:
    """A started front: its listeners and ports, to stop together."""

    front: Front
    sip_port: int
    http_port: int
    udp: tuple[asyncio.DatagramTransport, SipDatagram] | None
    servers: list[asyncio.Server]
    http: list[web.AppRunner]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening, finish answers in flight (bounded), close the channel."""
        for server in self.servers:
            server.close()
        if self.udp is not None:
            await self.udp[1].drain(grace_s)
            self.udp[0].close()
        for runner in self.http:
            await runner.cleanup()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), grace_s)
        await self.front.client.close()


def _path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else REPO_ROOT / path


def emergency_numbers(policy_file: str) -> frozenset[str]:
    """The decision policy's extra national emergency numbers (``emergency_numbers``)."""
    try:
        raw = yaml.safe_load(_path(policy_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"policy file {policy_file}: {exc}") from None
    numbers = raw.get("emergency_numbers", []) if isinstance(raw, dict) else None
    if not isinstance(numbers, list) or not all(isinstance(n, str | int) for n in numbers):
        raise ConfigurationError(f"policy file {policy_file}: emergency_numbers must be a list of numbers")
    return frozenset(str(number) for number in numbers)


def _tls_context(settings: SwitchFrontSettings) -> ssl.SSLContext | None:
    """Server TLS requiring a client certificate from the configured CA (as the gRPC servers do)."""
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=settings.tls_client_ca_file)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def start(settings: SwitchFrontSettings) -> Running:
    """Build the front from settings and open every configured listener."""
    try:
        trunks = Trunks.load(_path(settings.trunks_file))
    except TrunkError as exc:
        raise ConfigurationError(f"trunks: {exc}") from None
    decisions: Decisions = (
        DecisionClient(settings) if settings.decision_target else await InProcessDecisions.build(settings)
    )
    front = Front(
        decisions,
        trunks,
        AnswerConfig(settings.allow_contact, settings.challenge_uri, settings.label_header),
        settings.region_for,
        emergency_numbers(settings.policy_file),
        TransactionCache(settings.transaction_ttl_s, settings.transaction_max),
    )
    reuse = settings.workers > 1
    udp = None
    servers: list[asyncio.Server] = []
    sip_port = settings.sip_port
    if settings.sip_tcp:
        server = await asyncio.start_server(
            lambda r, w: serve_stream(front, r, w, "tcp"),
            settings.sip_bind,
            sip_port,
            reuse_port=reuse or None,
        )
        sip_port = server.sockets[0].getsockname()[1]
        servers.append(server)
    if settings.sip_udp:
        udp = await start_udp(front, settings.sip_bind, sip_port, reuse_port=reuse)
        sip_port = udp[0].get_extra_info("sockname")[1]
    tls = _tls_context(settings)
    if settings.sip_tls_port and tls is not None:
        servers.append(
            await asyncio.start_server(
                lambda r, w: serve_stream(front, r, w, "tls"),
                settings.sip_bind,
                settings.sip_tls_port,
                ssl=tls,
                reuse_port=reuse or None,
            )
        )
    runner = None
    http_port = 0
    if settings.http_port:
        runner = web.AppRunner(make_app(front, settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(
            runner, settings.http_bind, settings.http_port, ssl_context=tls, reuse_port=reuse or None
        )
        await site.start()
        http_port = int(runner.addresses[0][1])
    runners = [runner] if runner is not None else []
    if settings.health_port:
        health = web.AppRunner(make_health_app(front), access_log=None)
        await health.setup()
        await web.TCPSite(health, settings.http_bind, settings.health_port, reuse_port=reuse or None).start()
        runners.append(health)
    log.info("switchfront listening", extra={"sip_port": sip_port, "http_port": http_port})
    return Running(front, sip_port, http_port, udp, servers, runners)


async def serve(settings: SwitchFrontSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain."""
    running = await start(settings)
    await until_signalled()
    log.info("draining")
    await running.stop()


def run_worker(index: int) -> None:
    """One serving process (a spawn target, so importable); worker i serves metrics on port + i."""
    settings = load(SwitchFrontSettings)
    if index and settings.metrics_port:
        settings = dataclasses.replace(settings, metrics_port=settings.metrics_port + index)
    telemetry = setup_telemetry(settings)
    try:
        eventloop.run(serve(settings))
    except (ConfigurationError, DecisionConfigurationError) as exc:
        print(f"switchfront: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        telemetry.shutdown()
