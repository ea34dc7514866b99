"""SIPp (Debian's ``sip-tester``) as the user agent of the switch-front checks and benchmark.

``Call`` describes one INVITE as a switch would send it; ``uac_scenario`` writes the SIPp XML for
it (INVITE, the expected final answer, ACK with the INVITE's branch: SIPp's [branch-N] is the
branch of the step N places back, receive steps counted); ``run_sipp`` runs SIPp and returns what came
back, read from SIPp's own message log. ``responder_scenario`` is the trivial redirect server the
benchmark runs beside the front: SIPp answering every INVITE with a 302 at once.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

__all__ = [
    "SDP_BODY",
    "Call",
    "SippLoad",
    "SippResult",
    "responder_scenario",
    "run_sipp",
    "run_sipp_load",
    "sipp_binary",
    "uac_scenario",
]

_STATUS: Final = re.compile(r"^SIP/2\.0 (\d{3}) (.*)$")
# The SDP offer (or answer) every scenario carries, with the headers that frame it.
SDP_BODY: Final = """      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
"""


def sipp_binary() -> str:
    """SIPp's path; AssertionError with the fix when it is not installed (tests never skip on it)."""
    found = shutil.which("sipp")
    if found is None:
        raise AssertionError("sipp is not installed: `make deps` installs Debian's sip-tester")
    return found


@dataclass(frozen=True)
class Call:
    """One INVITE: who calls whom, at which Request-URI, with which extra headers."""

    caller: str = "+8613800138000"
    callee: str = "+8613900139000"
    request_uri: str = ""  # default: sip:<callee>@<remote>
    to_uri: str = ""  # default: the Request-URI
    extra_headers: tuple[str, ...] = ()
    display: str = ""
    expect: int = 302
    max_forwards: str = "Max-Forwards: 70"  # e.g. "Max-Forwards: seventy" makes the INVITE malformed
    timed: bool = False  # SIPp response-time timer from the INVITE to its final answer (-trace_rtt)


def uac_scenario(call: Call) -> str:
    """SIPp XML for one call as a UAC (``[remote_ip]`` etc. are SIPp's own keywords)."""
    ruri = call.request_uri or f"sip:{call.callee}@[remote_ip]:[remote_port];user=phone"
    to = call.to_uri or ruri
    display = f'"{call.display}" ' if call.display else ""
    headers = "".join(f"\n      {header}" for header in call.extra_headers)
    invite = f"""
      INVITE {ruri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      From: {display}<sip:{call.caller}@[local_ip]:[local_port];user=phone>;tag=[pid]SIPpTag00[call_number]
      To: <{to}>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      {call.max_forwards}
      User-Agent: SIPp fraudmesh-check{headers}
{SDP_BODY}"""
    ack = f"""
      ACK {ruri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch-3]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
"""
    timer = ' start_rtd="1"' if call.timed else ""
    steps = [f'  <send retrans="500"{timer}><![CDATA[{invite}]]></send>', _recv(call.expect, call.timed)]
    if call.expect >= 300:
        steps.append(f"  <send><![CDATA[{ack}]]></send>")
    body = "\n".join(steps)
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="fraudmesh {escape(str(call.expect))}">
{body}
</scenario>
"""


def _recv(code: int, timed: bool = False) -> str:
    provisional = '  <recv response="100" optional="true"></recv>\n'
    timer = ' rtd="1"' if timed else ""
    return provisional + f'  <recv response="{code}"{timer}></recv>'


def responder_scenario() -> str:
    """SIPp as the trivial redirect server: 302 back to the Request-URI for every INVITE, ACK absorbed."""
    return """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="trivial redirect">
  <recv request="INVITE" crlf="true"></recv>
  <send><![CDATA[
      SIP/2.0 302 Moved Temporarily
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[service]@[local_ip]:[local_port]>
      Content-Length: 0
]]></send>
  <recv request="ACK"></recv>
</scenario>
"""


@dataclass
class SippResult:
    """What SIPp saw: its exit code, every final status it received, the last answer's headers."""

    returncode: int
    statuses: list[tuple[int, str]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # received responses, whole text
    log: str = ""

    def header(self, name: str, answer: int = -1) -> str:
        """A header's value in one received answer (default: the last), or ''."""
        if not self.answers:
            return ""
        for line in self.answers[answer].splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return ""


def run_sipp(
    scenario: str,
    target: str,
    folder: Path,
    *,
    transport: str = "u1",
    calls: int = 1,
    timeout_s: float = 15.0,
) -> SippResult:
    """Run SIPp with one scenario against ``host:port``; never raises for a failed call."""
    path = _fresh(folder, scenario)
    messages = folder / "messages.log"
    errors = folder / "errors.log"
    command = [
        sipp_binary(),
        target,
        "-sf", str(path),
        "-m", str(calls),
        "-l", "1",
        "-t", transport,
        "-i", "127.0.0.1",
        "-nostdin",
        "-timeout", f"{timeout_s:.0f}s",
        "-timeout_error",
        "-recv_timeout", "5000",
        "-trace_msg", "-message_file", str(messages),
        "-trace_err", "-error_file", str(errors),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
        command, cwd=folder, capture_output=True, text=True, timeout=timeout_s + 30, check=False
    )
    text = messages.read_text(errors="replace") if messages.exists() else ""
    answers = _received(text)
    statuses = []
    for answer in answers:
        match = _STATUS.match(answer.splitlines()[0])
        if match:
            statuses.append((int(match.group(1)), match.group(2)))
    log = (
        (errors.read_text(errors="replace") if errors.exists() else "")
        + done.stdout[-2000:]
        + done.stderr[-2000:]
    )
    return SippResult(done.returncode, statuses, answers, log)


def _fresh(folder: Path, scenario: str) -> Path:
    """An emptied run folder with the scenario written in it; the scenario file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    path = folder / "scenario.xml"
    path.write_text(scenario, encoding="utf-8")
    return path


def _received(log: str) -> list[str]:
    """The responses SIPp logged as received (blocks after a '... message received ...' line)."""
    out: list[str] = []
    for block in re.split(r"\n(?=-{5,} )", log):
        lines = [line.rstrip("\r") for line in block.strip().splitlines()]
        if len(lines) < 2 or "message received" not in lines[1]:
            continue
        start = next((i for i, line in enumerate(lines) if line.startswith("SIP/2.0 ")), None)
        if start is not None:
            out.append("\n".join(lines[start:]).strip())
    return out


@dataclass
class SippLoad:
    """One SIPp load run: calls offered and answered as expected, the rate achieved, answer times."""

    offered: int
    succeeded: int
    failed: int
    calls_per_s: float
    answer_ms: list[float]
    seconds: float = 0.0  # the offered calls' span at the offered rate

    def pct(self, q: float) -> float:
        """A percentile of the answer times (ms), NaN without any."""
        if not self.answer_ms:
            return float("nan")
        ordered = sorted(self.answer_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_sipp_load(
    scenario: str,
    target: str,
    folder: Path,
    *,
    rate: float,
    calls: int,
    numbers: list[tuple[str, str]],
    max_in_flight: int = 200,
) -> SippLoad:
    """SIPp as an open-loop load: ``calls`` INVITEs at ``rate``/s (at most max_in_flight at once),
    callers and callees from ``numbers`` in turn; answer times from SIPp's own per-call timer."""
    path = _fresh(folder, scenario)
    injection = folder / "numbers.csv"
    injection.write_text("SEQUENTIAL\n" + "".join(f"{a};{b};\n" for a, b in numbers), encoding="utf-8")
    command = [
        sipp_binary(), target,
        "-sf", str(path),
        "-inf", str(injection),
        "-m", str(calls),
        "-r", f"{rate:.0f}",
        "-l", str(max_in_flight),
        "-t", "u1",
        "-i", "127.0.0.1",
        "-nostdin",
        "-recv_timeout", "5000",
        "-timeout", f"{calls / rate + 30:.0f}s",
        "-trace_rtt", "-rtt_freq", "1",
        "-trace_stat", "-stf", str(folder / "stat.csv"),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
        command, cwd=folder, capture_output=True, text=True, timeout=calls / rate + 90, check=False
    )
    elapsed = time.perf_counter() - started
    answer_ms: list[float] = []
    for rtt in folder.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            fields = line.split(";")
            if len(fields) >= 2:
                with contextlib.suppress(ValueError):
                    answer_ms.append(float(fields[1]))
    succeeded, failed = _final_counts(folder / "stat.csv")
    if not succeeded and not failed and done.returncode not in (0, 1):
        raise RuntimeError(f"SIPp did not run ({done.returncode}): {done.stderr[-2000:]}")
    return SippLoad(
        calls, succeeded, failed, succeeded / elapsed if elapsed else 0.0, answer_ms, calls / rate
    )


def _final_counts(stat: Path) -> tuple[int, int]:
    """SuccessfulCall(C) and FailedCall(C) from the last line of SIPp's statistics file."""
    if not stat.exists():
        return 0, 0
    lines = [line for line in stat.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0, 0
    header = lines[0].split(";")
    last = lines[-1].split(";")
    values = dict(zip(header, last, strict=False))
    return int(values.get("SuccessfulCall(C)", 0) or 0), int(values.get("FailedCall(C)", 0) or 0)
