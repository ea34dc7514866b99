"""Typed settings from FRAUDMESH_* environment variables, validated all at once at start-up.

Each service declares one frozen dataclass that extends ``CommonSettings``; ``load`` reads every
field from ``FRAUDMESH_<FIELD>`` (upper case), converts it to the annotated type, and raises one
``SettingsError`` listing every missing or malformed value so a bad deployment fails fast.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import time
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "FRAUDMESH_"

S = TypeVar("S", bound="CommonSettings")


class SettingsError(Exception):
    """Raised when settings are missing or malformed; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid fraudmesh settings:\n  - " + "\n  - ".join(problems))


class Secret:
    """A secret value that never shows in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        """Return the secret bytes; call only where the secret is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class TextSecret(Secret):
    """A secret used as text (e.g. a bearer token): taken verbatim, never hex-decoded."""

    __slots__ = ()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false/1/0/yes/no/on/off")


def _parse_secret(text: str) -> Secret:
    """Secrets are given as hex (64+ chars for 32 bytes) or as raw text of at least 32 bytes."""
    stripped = text.strip()
    try:
        value = bytes.fromhex(stripped)
    except ValueError:
        value = stripped.encode()
    return Secret(value)


def _parse_tuple(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser_for(annotation: Any) -> Callable[[str], Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(inner) == 1:
            return _parser_for(inner[0])
        raise TypeError(f"unsupported settings type {annotation!r}")
    if origin is tuple:
        return _parse_tuple
    if annotation is bool:
        return _parse_bool
    if annotation is TextSecret:
        return lambda text: TextSecret(text.strip().encode())
    if annotation is Secret:
        return _parse_secret
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        enum_type = annotation

        def parse_enum(text: str) -> Any:
            try:
                return enum_type(text.strip())
            except ValueError:
                allowed = ", ".join(str(member.value) for member in enum_type)
                raise ValueError(f"expected one of: {allowed}") from None

        return parse_enum
    if annotation in (int, float, str, Path):
        return typing.cast(Callable[[str], Any], annotation)
    raise TypeError(f"unsupported settings type {annotation!r}")


def env_name(field_name: str) -> str:
    """The environment variable that sets a settings field."""
    return PREFIX + field_name.upper()


def load(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build ``cls`` from the environment, raising one SettingsError that lists every problem.

    A field ``foo`` is read from ``FRAUDMESH_FOO``; for ``Secret`` fields ``FRAUDMESH_FOO_FILE``
    may name a file holding the value instead (how Kubernetes mounts secrets).
    """
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):
        name = env_name(field.name)
        annotation = hints[field.name]
        secret = any(
            isinstance(candidate, type) and issubclass(candidate, Secret)
            for candidate in (annotation, *typing.get_args(annotation))
        )
        raw = env.get(name)
        if raw is None and secret and env.get(name + "_FILE"):
            try:
                raw = Path(env[name + "_FILE"]).read_text()
            except OSError as exc:
                problems.append(f"{name}_FILE: cannot read ({exc.strerror})")
                continue
        if raw is None:
            no_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if no_default:
                problems.append(f"{name}: required but not set")
            continue
        try:
            values[field.name] = _parser_for(annotation)(raw)
        except (TypeError, ValueError) as exc:
            shown = "***" if secret else repr(raw)
            problems.append(f"{name}={shown}: {exc}")
    if problems:
        raise SettingsError(problems)
    try:
        settings = cls(**values)
    except ValueError as exc:
        raise SettingsError([str(exc)]) from exc
    return settings


class LogFormat(enum.Enum):
    """How logs are written: JSON lines for machines, plain text for a terminal."""

    JSON = "json"
    TEXT = "text"


class ClockSource(enum.Enum):
    """Which clock call-path services judge a call by.

    ``wall``: this host's clock (production). ``event``: the CallSetup's ``event_time`` as the
    switch stamped it, for replaying recorded or simulated traffic whose PASSporTs and reputation
    windows live in the past. Never use ``event`` on live traffic from switches you do not run.
    """

    WALL = "wall"
    EVENT = "event"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CommonSettings:
    """Settings every fraudmesh process shares; services extend it with their own fields."""

    service_name: str = "fraudmesh"
    kafka_bootstrap: str = "127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_pool_size: int = 32
    # Socket timeout of any one Redis command; call paths bound their own waits far tighter with
    # asyncio sub-deadlines, while batch writers (a 500-script pipeline) need room under load.
    redis_timeout_s: float = 2.0
    redis_connect_timeout_s: float = 1.0
    pseudonym_key: Secret
    default_region: str = "CN"
    tenant_regions: tuple[str, ...] = ()
    home_ranges: tuple[str, ...] = ("+86138", "+86139", "+86150", "+86188")
    risky_ranges: tuple[str, ...] = ("+86170", "+86171", "+86165", "+86167")
    utc_offset_hours: float = 8.0
    clock_source: ClockSource = ClockSource.WALL
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = 0
    otlp_endpoint: str = ""
    trace_sample_ratio: float = 0.01
    # Mutual TLS on a gRPC server: all three PEM files or none (none = plaintext). With TLS on,
    # grpc_health_port (if set) serves only grpc.health.v1 in plaintext for the kubelet's probes.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    grpc_health_port: int = 0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if len(self.pseudonym_key.reveal()) < 32:
            problems.append(f"{env_name('pseudonym_key')}: must be at least 32 bytes (64 hex chars)")
        if not 0.0 <= self.trace_sample_ratio <= 1.0:
            problems.append(f"{env_name('trace_sample_ratio')}: must be within [0, 1]")
        if not 0 <= self.metrics_port <= 65535:
            problems.append(f"{env_name('metrics_port')}: must be a port number (0 disables)")
        tls_files = (self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)
        if any(tls_files) and not all(tls_files):
            problems.append(
                f"{env_name('tls_cert_file')}, {env_name('tls_key_file')} and "
                f"{env_name('tls_client_ca_file')} must be set together (or none, for plaintext)"
            )
        if not 0 <= self.grpc_health_port <= 65535:
            problems.append(f"{env_name('grpc_health_port')}: must be a port number (0 disables)")
        if self.redis_pool_size < 1:
            problems.append(f"{env_name('redis_pool_size')}: must be at least 1")
        if self.redis_timeout_s <= 0 or self.redis_connect_timeout_s <= 0:
            problems.append("redis timeouts must be positive")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            problems.append(f"{env_name('log_level')}: unknown level")
        try:
            _ = self.tenant_region_map
        except ValueError as exc:
            problems.append(f"{env_name('tenant_regions')}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))

    @functools.cached_property
    def tenant_region_map(self) -> dict[str, str]:
        """Tenant → ISO region used to read national-format numbers ("op-cn=CN,op-us=US")."""
        mapping: dict[str, str] = {}
        for entry in self.tenant_regions:
            tenant, sep, region = entry.partition("=")
            if not sep or not tenant.strip() or len(region.strip()) != 2:
                raise ValueError(f"expected tenant=REGION pairs, got {entry!r}")
            mapping[tenant.strip()] = region.strip().upper()
        return mapping

    def call_time(self, event_time_s: float) -> float:
        """The time (epoch seconds) a call is judged at: wall clock, or its event time when configured."""
        if self.clock_source is ClockSource.EVENT and event_time_s > 0:
            return event_time_s
        return time.time()

    def region_for(self, tenant: str) -> str:
        """The default region for national-format numbers of one tenant."""
        return self.tenant_region_map.get(tenant, self.default_region)


def token_principals(token: TextSecret) -> dict[bytes, str]:
    """Bearer token → principal (admin API, HTTP front): one bare token is principal ``admin``;
    else ``<principal> <token>`` lines.

    Raises ValueError (naming no token) for a token under 16 bytes or a malformed line.
    """
    lines = [line.strip() for line in token.reveal().splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0].split()) == 1:
        if len(lines[0]) < 16:
            raise ValueError("must be at least 16 bytes")
        return {lines[0]: "admin"}
    found: dict[bytes, str] = {}
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2 or len(parts[1]) < 16 or not parts[0].decode("ascii", "replace").isprintable():
            raise ValueError(
                f"line {number}: expected '<principal> <token>' with a token of at least 16 bytes"
            )
        found[parts[1]] = parts[0].decode("ascii", "replace")
    if not found:
        raise ValueError("no token")
    return found
