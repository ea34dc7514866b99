"""Scenario files: the population, network and actors the traffic simulator plays, as typed YAML.

Every field has a documented default (docs/scenarios.md); a scenario file only overrides what it
changes. Loading is strict — an unknown key, a wrong type or an impossible value is a
``ScenarioError`` naming the path, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_START = datetime.fromisoformat("2026-11-02T00:00:00+08:00")


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the offending path."""


@dataclasses.dataclass(frozen=True)
class Carrier:
    """A carrier whose trunks deliver calls to the home network.

    ``sends_pai``: its trunk sends a P-Asserted-Identity (E.164) beside From, as on-net and
    domestic interconnect trunks inside the trust domain do; gateways and VoIP peers often do not.
    """

    name: str
    ocn: str
    signs: bool = True
    attest: str = "A"
    ranges: tuple[str, ...] = ()
    sends_pai: bool = True


@dataclasses.dataclass(frozen=True)
class Network:
    """The home operator (tenant) and the carriers that hand it calls.

    ``mvno_share``: legitimate mobile numbers in ``virtual_ranges`` (MVNO subscribers);
    ``unsigned_share``: interconnect calls that lose their Identity header on the way.
    """

    tenant: str = "demo-cn"
    region: str = "CN"
    home: Carrier = Carrier("home", "H001", True, "A", ("+86138", "+86139", "+86150", "+86188"))
    cities: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "10": "CN-BJ",
            "21": "CN-SH",
            "20": "CN-GD",
            "755": "CN-GD",
            "28": "CN-SC",
            "27": "CN-HB",
            "571": "CN-ZJ",
            "25": "CN-JS",
        }
    )
    interconnects: tuple[Carrier, ...] = (
        Carrier("ic-north", "N001", True, "A", ("+86130", "+86131", "+86186")),
        Carrier("ic-south", "S001", True, "A", ("+86133", "+86153", "+86189")),
    )
    gateways: tuple[Carrier, ...] = (
        Carrier("gw-intl", "G001", False, "C", sends_pai=False),
        Carrier("gw-signed", "G002", True, "C", sends_pai=False),
    )
    voip_peers: tuple[Carrier, ...] = (
        Carrier("voip-signed", "V001", True, "C"),
        Carrier("voip-open", "V002", False, "C", sends_pai=False),
    )
    virtual_ranges: tuple[str, ...] = ("+86170", "+86171", "+86165", "+86167")
    emergency_numbers: tuple[str, ...] = ("110", "119", "120", "122")
    clock_skew_share: float = 0.003
    mvno_share: float = 0.06
    unsigned_share: float = 0.02


@dataclasses.dataclass(frozen=True)
class Subscribers:
    """Ordinary people: a contact graph, a diurnal rhythm, callbacks; some switch to a new number
    (``new_number_share`` a day) or kept theirs across carriers (``ported_share``)."""

    count: int = 50_000
    off_net_share: float = 0.3
    contacts_mean: float = 12.0
    community_size: int = 200
    calls_per_day: float = 3.0
    contact_share: float = 0.9
    callback_share: float = 0.3
    answer_rate: float = 0.8
    mean_duration_s: float = 120.0
    fixed_line_share: float = 0.15
    roaming_share: float = 0.03
    withheld_share: float = 0.02
    new_number_share: float = 0.002
    ported_share: float = 0.02


@dataclasses.dataclass(frozen=True)
class BulkCallers:
    """Legitimate high-volume callers: the false-positive traps."""

    count: int
    calls_per_day: float
    answer_rate: float
    mean_duration_s: float
    numbers_each: int = 1
    audience: int = 0
    automated: bool = False
    attest: str = "A"
    voip_share: float = 0.0
    pbx_share: float = 0.0


@dataclasses.dataclass(frozen=True)
class Legit:
    """The legitimate high-volume caller groups; ``outbound`` diallers look like a campaign."""

    couriers: BulkCallers = BulkCallers(80, 120.0, 0.85, 25.0)
    call_centres: BulkCallers = BulkCallers(
        6, 1500.0, 0.45, 150.0, numbers_each=4, audience=5000, attest="B", voip_share=0.4, pbx_share=0.5
    )
    reminders: BulkCallers = BulkCallers(
        4, 800.0, 0.65, 30.0, audience=8000, automated=True, attest="B", voip_share=0.5
    )
    bank_alerts: BulkCallers = BulkCallers(3, 200.0, 0.75, 60.0, numbers_each=2, attest="B", voip_share=0.1)
    outbound: BulkCallers = BulkCallers(2, 3000.0, 0.2, 20.0, numbers_each=30, attest="B", voip_share=0.6)


@dataclasses.dataclass(frozen=True)
class Enterprise:
    """How legitimate businesses' calls arrive: attestation B, C or none is normal for them too."""

    unsigned_share: float = 0.1
    c_share: float = 0.05
    voip_unsigned_share: float = 0.5
    voip_b_share: float = 0.3


@dataclasses.dataclass(frozen=True)
class Complaints:
    """Complaints about legitimate numbers: mistaken reports of wanted calls, and malicious ones."""

    mistaken_rate: float = 0.0005
    business_mistaken_rate: float = 0.004
    malicious_rate: float = 0.002
    malicious_report_share: float = 0.3
    delay_minutes: float = 120.0


@dataclasses.dataclass(frozen=True)
class Foreign:
    """People abroad calling home subscribers they know, through international gateways."""

    count: int = 5000
    calls_per_day: float = 0.6
    contacts: int = 3
    answer_rate: float = 0.75
    mean_duration_s: float = 300.0
    withheld_share: float = 0.05


@dataclasses.dataclass(frozen=True)
class Robocalls:
    """Robocall campaigns with rotating number pools and location masking."""

    campaigns: int = 3
    calls_per_day: float = 30_000.0
    pool_size: int = 400
    active_numbers: int = 40
    rotation_minutes: float = 30.0
    virtual_share: float = 0.5
    location_masking_share: float = 0.5
    answer_rate: float = 0.15
    mean_duration_s: float = 12.0
    complaint_share: float = 0.03
    complaint_delay_minutes: float = 90.0
    voip_share: float = 0.4
    a_attested_share: float = 0.15
    honeypot_share: float = 0.01


@dataclasses.dataclass(frozen=True)
class Adaptive:
    """Campaigns that adapt to detection: aged numbers, bought A attestation, low and slow, spread wide."""

    campaigns: int = 1
    calls_per_day: float = 6000.0
    spread_numbers: int = 2000
    max_calls_per_number_hour: int = 4
    number_aging_days: float = 14.0
    aging_calls_per_day: float = 3.0
    buys_a_attestation_share: float = 0.4
    virtual_share: float = 0.2
    voip_share: float = 0.2
    answer_rate: float = 0.2
    mean_duration_s: float = 35.0
    complaint_share: float = 0.02
    honeypot_share: float = 0.002


@dataclasses.dataclass(frozen=True)
class Spoofers:
    """Caller-ID spoofers by technique."""

    neighbor: int = 4
    intl_domestic: int = 4
    onnet_offnet: int = 2
    invalid_number: int = 2
    calls_per_day: float = 1500.0
    answer_rate: float = 0.3
    mean_duration_s: float = 40.0
    complaint_share: float = 0.05
    signed_share: float = 0.3
    intl_real_share: float = 0.5


@dataclasses.dataclass(frozen=True)
class Impersonators:
    """AI-voice impersonators presenting a relative's number with a cloned voice; ``onnet_share`` of
    the victims hear a relative who is one of the tenant's own subscribers."""

    count: int = 5
    victims_per_day: float = 8.0
    calls_per_victim: float = 3.0
    answer_rate: float = 0.9
    mean_duration_s: float = 240.0
    complaint_share: float = 0.5
    onnet_share: float = 0.6


@dataclasses.dataclass(frozen=True)
class Presence:
    """What the home network reports about the tenant's own mobile subscribers (subscribers.presence.v1):
    attached at home, abroad on a trip (``roaming_share`` of them at any moment, ``roaming_days`` a
    trip, ``gateway_share`` of trips calling home over an international gateway), switched off at
    night (``detach_share``), a re-registration every ``reregistration_hours``, and their on-net
    calls' start and end."""

    enabled: bool = False
    reregistration_hours: float = 2.5
    roaming_share: float = 0.01
    roaming_days: float = 7.0
    gateway_share: float = 0.5
    detach_share: float = 0.15


@dataclasses.dataclass(frozen=True)
class Emergency:
    """Calls to the tenant's emergency numbers (always to be allowed)."""

    calls_per_day: float = 300.0


@dataclasses.dataclass(frozen=True)
class Capture:
    """Which calls produce audio-segment metadata (media taps and honeypots, which legitimate
    wrong-number calls reach too), and whether replay renders audio for them and publishes it to the
    audio service."""

    tap_share: float = 0.02
    suspect_tap_share: float = 0.0
    honeypots: int = 50
    wrong_number_calls_per_day: float = 0.3
    audio: bool = False
    max_audio_segments: int = 300


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One simulated stretch of traffic for one tenant."""

    name: str = "default"
    seed: int = 20261121
    start: datetime = DEFAULT_START
    duration_hours: float = 24.0
    network: Network = Network()
    subscribers: Subscribers = Subscribers()
    legit: Legit = Legit()
    enterprise: Enterprise = Enterprise()
    complaints: Complaints = Complaints()
    foreign: Foreign = Foreign()
    robocalls: Robocalls = Robocalls()
    adaptive: Adaptive = Adaptive()
    spoofers: Spoofers = Spoofers()
    impersonators: Impersonators = Impersonators()
    presence: Presence = Presence()
    emergency: Emergency = Emergency()
    capture: Capture = Capture()

    @property
    def start_ms(self) -> int:
        """Scenario start as Unix milliseconds."""
        return int(self.start.timestamp() * 1000)

    @property
    def duration_ms(self) -> int:
        """Scenario length in milliseconds."""
        return int(self.duration_hours * 3_600_000)

    @property
    def utc_offset_hours(self) -> float:
        """Local time offset used for the diurnal rhythm."""
        offset = self.start.utcoffset()
        return offset.total_seconds() / 3600 if offset else 0.0


def _build(cls: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(cls)
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: expected a mapping for {cls.__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ScenarioError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
        values = {key: _build(hints[key], value, f"{path}.{key}") for key, value in data.items()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise ScenarioError(f"{path}: {exc}") from None
    if origin is tuple:
        (inner, *_rest) = typing.get_args(cls)
        if not isinstance(data, list):
            raise ScenarioError(f"{path}: expected a list")
        return tuple(_build(inner, item, f"{path}[{i}]") for i, item in enumerate(data))
    if origin is dict:
        _key_type, value_type = typing.get_args(cls)
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: expected a mapping")
        return {str(k): _build(value_type, v, f"{path}.{k}") for k, v in data.items()}
    if origin in (typing.Union, types.UnionType):
        raise ScenarioError(f"{path}: unsupported union type")
    if cls is datetime:
        if isinstance(data, datetime):
            return data
        try:
            parsed = datetime.fromisoformat(str(data))
        except ValueError:
            raise ScenarioError(f"{path}: expected an ISO 8601 time with offset") from None
        if parsed.utcoffset() is None:
            raise ScenarioError(f"{path}: the time needs a UTC offset, e.g. +08:00")
        return parsed
    if cls is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if cls in (int, str, bool) and type(data) is cls:
        return data
    raise ScenarioError(f"{path}: expected {getattr(cls, '__name__', cls)}, got {type(data).__name__}")


def _check(scenario: Scenario) -> None:
    problems: list[str] = []
    for section in (
        scenario.network,
        scenario.subscribers,
        scenario.enterprise,
        scenario.complaints,
        scenario.robocalls,
        scenario.adaptive,
        scenario.spoofers,
        scenario.impersonators,
        scenario.presence,
        scenario.capture,
        scenario.foreign,
        *(getattr(scenario.legit, f.name) for f in dataclasses.fields(scenario.legit)),
    ):
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                problems.append(f"{type(section).__name__}.{field.name} must not be negative")
            if (field.name.endswith(("_share", "_rate"))) and isinstance(value, float) and value > 1:
                problems.append(f"{type(section).__name__}.{field.name} must be within [0, 1]")
    for field in dataclasses.fields(scenario.legit):
        if getattr(scenario.legit, field.name).attest not in {"A", "B", "C"}:
            problems.append(f"legit.{field.name}.attest must be A, B or C")
    if scenario.network.mvno_share > 0 and not scenario.network.virtual_ranges:
        problems.append("network.virtual_ranges must not be empty when network.mvno_share is above 0")
    if scenario.enterprise.unsigned_share + scenario.enterprise.c_share > 1:
        problems.append("enterprise.unsigned_share + enterprise.c_share must not exceed 1")
    if scenario.subscribers.new_number_share * scenario.duration_hours / 24 > 1:
        problems.append("subscribers.new_number_share times the days simulated must not exceed 1")
    if scenario.adaptive.campaigns > 0 and scenario.adaptive.spread_numbers < 1:
        problems.append("adaptive.spread_numbers must be at least 1 when there are adaptive campaigns")
    if scenario.foreign.count > 0 and scenario.foreign.contacts < 1:
        problems.append("foreign.contacts must be at least 1")
    presence = scenario.presence
    if presence.enabled and min(presence.reregistration_hours, presence.roaming_days) <= 0:
        problems.append("presence.reregistration_hours and presence.roaming_days must be positive")
    if scenario.duration_hours <= 0:
        problems.append("duration_hours must be positive")
    if scenario.subscribers.count < 10:
        problems.append("subscribers.count must be at least 10")
    if scenario.capture.audio and scenario.capture.max_audio_segments < 1:
        problems.append("capture.max_audio_segments must be at least 1 when capture.audio is true")
    if scenario.robocalls.active_numbers > scenario.robocalls.pool_size:
        problems.append("robocalls.active_numbers must not exceed robocalls.pool_size")
    carriers = [scenario.network.home, *scenario.network.interconnects, *scenario.network.gateways]
    carriers += list(scenario.network.voip_peers)
    names = [c.name for c in carriers]
    if len(set(names)) != len(names):
        problems.append("carrier names must be unique")
    for carrier in carriers:
        if carrier.attest not in {"A", "B", "C"}:
            problems.append(f"carrier {carrier.name}: attest must be A, B or C")
    if not scenario.network.home.ranges or not scenario.network.cities:
        problems.append("network.home.ranges and network.cities must not be empty")
    if problems:
        raise ScenarioError("; ".join(problems))


def from_dict(data: dict[str, Any]) -> Scenario:
    """Build and validate a scenario from parsed YAML."""
    scenario: Scenario = _build(Scenario, data, "scenario")
    _check(scenario)
    return scenario


def load(path_or_name: str | Path) -> Scenario:
    """Load a scenario file, or a bundled one by name ("default", "ci", "stress", "holdout")."""
    path = Path(path_or_name)
    if not path.exists() and (SCENARIO_DIR / f"{path_or_name}.yaml").exists():
        path = SCENARIO_DIR / f"{path_or_name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None
    return from_dict(data or {})
