"""Kamailio (Debian's kamailio 5.6) as the proxy in front of the switch front, for the interop tests.

``Kamailio.start`` runs one of deploy/switchfront/kamailio/*.cfg in the foreground on a free loopback
UDP port (defines passed with ``-A``) and returns once it answers an OPTIONS; ``stop`` always ends
it. Behind it SIPp plays the callee: ``SippUas`` answers one INVITE with 200 and SDP, takes the ACK
and the BYE, and keeps what it received (``invite()``) so a test reads the P-Asserted-Identity and
X-Fraudmesh-Decision the proxy wrote. ``answered_uac_scenario`` is loadtest.sipp's UAC for a call that
is answered: INVITE, 200, then ACK and BYE along the proxy's Record-Route.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from loadtest.processes import REPO_ROOT, _die_with_parent
from loadtest.sipp import SDP_BODY, Call, SippResult, run_sipp, sipp_binary, uac_scenario

__all__ = [
    "CONFIGS",
    "VARIANTS",
    "Kamailio",
    "SipMessage",
    "SippUas",
    "answered_uac_scenario",
    "dial",
    "free_udp_port",
    "kamailio_binary",
    "proxy_defines",
    "start_proxy",
    "uas_scenario",
]

CONFIGS: Final = REPO_ROOT / "deploy" / "switchfront" / "kamailio"
_REQUEST_LINE: Final = re.compile(r"^[A-Z]+ \S+ SIP/2\.0$")


def kamailio_binary() -> str:
    """Kamailio's path (PATH, then /usr/sbin); AssertionError with the fix when it is not installed."""
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if found is None:
        raise AssertionError(
            "kamailio is not installed: `make deps` installs Debian's kamailio, kamailio-utils-modules "
            "and kamailio-json-modules"
        )
    return found


def free_udp_port() -> int:
    """A loopback UDP port free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_bound(port: int) -> bool:
    """True when a socket holds 127.0.0.1:port for UDP (read from /proc: probing by bind would race)."""
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == wanted for line in lines if len(line.split()) > 1)


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> int:
    """SIGTERM, then SIGKILL to the process group (Kamailio's children) if it does not end in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
    return process.returncode


@dataclass
class Kamailio:
    """A running Kamailio: its process, UDP port, log and runtime folder."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    runtime_dir: Path

    @classmethod
    def start(
        cls, cfg_path: Path, defines: Mapping[str, str], log_path: Path, timeout_s: float = 10.0
    ) -> Kamailio:
        """Run ``cfg_path`` listening on a free loopback UDP port (define LISTEN); values in ``defines``
        are substituted verbatim, so strings carry their quotes (``'"sip:127.0.0.1:5070"'``)."""
        binary = kamailio_binary()
        port = free_udp_port()
        runtime = Path(tempfile.mkdtemp(prefix="kamailio-"))
        arguments = {"LISTEN": f"udp:127.0.0.1:{port}", **defines}
        command = [
            binary, "-f", str(cfg_path),
            "-DD", "-E", "-n", "1",  # foreground, log to stderr, one worker per socket
            "-Y", str(runtime), "-w", str(runtime),
        ]  # fmt: skip
        for name, value in arguments.items():
            command += ["-A", f"{name}={value}"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proxy = cls(process, port, log_path, runtime)
        try:
            proxy._wait_ready(timeout_s)
        except BaseException:
            proxy.stop()
            raise
        return proxy

    def _wait_ready(self, timeout_s: float) -> None:
        """Probe with OPTIONS until Kamailio answers 200; fail with its log if it exits or stays silent."""
        deadline = time.monotonic() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.2)
            local = sock.getsockname()[1]
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"kamailio exited with code {self.process.returncode}:\n{self.tail()}")
                sock.sendto(_options(self.port, local), ("127.0.0.1", self.port))
                try:
                    if sock.recv(65535).startswith(b"SIP/2.0 200 "):
                        return
                except OSError:  # timeout, or ICMP port unreachable while it binds
                    continue
        raise TimeoutError(f"kamailio did not answer OPTIONS within {timeout_s:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        """The end of Kamailio's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def stop(self) -> int:
        """Stop Kamailio (its children with it) and remove its runtime folder; returns the exit code."""
        try:
            return _stop(self.process)
        finally:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _options(port: int, local: int) -> bytes:
    branch = uuid.uuid4().hex
    lines = [
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};rport;branch=z9hG4bK{branch}",
        f"From: <sip:probe@127.0.0.1:{local}>;tag={branch[:10]}",
        f"To: <sip:127.0.0.1:{port}>",
        f"Call-ID: {branch}@fraudmesh.probe",
        "CSeq: 1 OPTIONS",
        "Max-Forwards: 70",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


@dataclass(frozen=True)
class SipMessage:
    """A SIP message's start line and headers, in order."""

    start_line: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> SipMessage:
        """The head of a message as SIPp logged it."""
        lines = text.split("\n\n", 1)[0].splitlines()
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(lines[0].strip(), tuple(headers))

    def values(self, name: str) -> list[str]:
        """Every value of one header, in order."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str:
        """A header's first value, or ''."""
        found = self.values(name)
        return found[0] if found else ""


def uas_scenario() -> str:
    """SIPp as the callee behind the proxy: INVITE → 200 with SDP (Record-Route echoed), ACK, BYE → 200."""
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="fraudmesh callee">
  <recv request="INVITE" crlf="true"></recv>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
{SDP_BODY}]]></send>
  <recv request="ACK"></recv>
  <recv request="BYE"></recv>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
]]></send>
</scenario>
"""


_ACK_AND_BYE: Final = """  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0
]]></send>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0
]]></send>
  <recv response="200" crlf="true"></recv>
"""


def answered_uac_scenario(call: Call) -> str:
    """SIPp XML for a call that is answered: loadtest.sipp's INVITE expecting 200 (its Record-Route
    kept), then ACK and BYE to the callee's Contact through the proxy."""
    invite = uac_scenario(replace(call, expect=200))
    answer = '<recv response="200"'
    if answer not in invite:
        raise AssertionError("loadtest.sipp.uac_scenario changed: no 200 to receive in its scenario")
    invite = invite.replace(answer, answer + ' rrs="true"')
    return invite.replace("</scenario>", _ACK_AND_BYE + "</scenario>")


@dataclass
class SippUas:
    """SIPp running ``uas_scenario`` on one loopback UDP port for one call, in the background."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @classmethod
    def start(cls, port: int, folder: Path, timeout_s: float = 20.0) -> SippUas:
        """Start it and wait until it holds its port (it must be listening before the caller dials)."""
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        scenario = folder / "uas.xml"
        scenario.write_text(uas_scenario(), encoding="utf-8")
        command = [
            sipp_binary(),
            "-sf", str(scenario),
            "-i", "127.0.0.1",
            "-p", str(port),
            "-m", "1",
            "-nostdin",
            "-timeout", f"{timeout_s:.0f}s",
            "-timeout_error",
            "-trace_msg", "-message_file", str(folder / "messages.log"),
            "-trace_err", "-error_file", str(folder / "errors.log"),
        ]  # fmt: skip
        with (folder / "sipp.out").open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        uas = cls(process, port, folder)
        deadline = time.monotonic() + 10.0
        while not _udp_bound(port):
            if process.poll() is not None or time.monotonic() > deadline:
                uas.stop()
                raise RuntimeError(f"SIPp (UAS) did not start on port {port}:\n{uas.log()}")
            time.sleep(0.02)
        return uas

    def wait(self, timeout_s: float = 10.0) -> int:
        """Its exit code once its call has ended (BYE answered); stopped if it takes longer."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return _stop(self.process)

    def stop(self) -> int:
        """End it now (for a call that never reached it); returns its exit code."""
        return _stop(self.process)

    def requests(self) -> list[SipMessage]:
        """The requests it received, in order (read from SIPp's message log)."""
        path = self.folder / "messages.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        out: list[SipMessage] = []
        for block in re.split(r"\n(?=-{5,} )", text):
            lines = [line.rstrip("\r") for line in block.strip().splitlines()]
            if len(lines) < 2 or "message received" not in lines[1]:
                continue
            start = next((i for i, line in enumerate(lines) if _REQUEST_LINE.match(line)), None)
            if start is not None:
                out.append(SipMessage.parse("\n".join(lines[start:])))
        return out

    def invite(self) -> SipMessage:
        """The INVITE it received; AssertionError with its log when none arrived."""
        for request in self.requests():
            if request.start_line.startswith("INVITE "):
                return request
        raise AssertionError(f"the callee received no INVITE:\n{self.log()}")

    def log(self) -> str:
        """SIPp's errors and screen output, for failure messages."""
        parts = [self.folder / name for name in ("errors.log", "sipp.out")]
        return "".join(path.read_text(errors="replace")[-2000:] for path in parts if path.exists())


VARIANTS: Final = ("redirect", "http")


def proxy_defines(variant: str, front: str, callee_port: int, token: str = "") -> dict[str, str]:
    """The -A defines for one config; ``front`` is the front's SIP host:port (redirect) or its HTTP
    base URL (http). Service URNs have no host: they go to the callee (EMERGENCY_ROUTE) here."""
    emergency = f'"sip:127.0.0.1:{callee_port}"'
    if variant == "redirect":
        return {"FRONT": f'"sip:{front}"', "FRONT_TIMEOUT_MS": "1000", "EMERGENCY_ROUTE": emergency}
    defines = {"FRONT_URL": f'"{front}/v1/decide"', "FRONT_TIMEOUT_S": "1", "EMERGENCY_ROUTE": emergency}
    if token:
        defines["FRONT_TOKEN"] = f'"{token}"'
    return defines


def start_proxy(variant: str, front: str, callee_port: int, token: str = "") -> Kamailio:
    """Kamailio running deploy/switchfront/kamailio/<variant>.cfg in front of ``front``."""
    log = REPO_ROOT / ".stack" / "logs" / f"kamailio-{variant}-{uuid.uuid4().hex[:8]}.log"
    return Kamailio.start(CONFIGS / f"{variant}.cfg", proxy_defines(variant, front, callee_port, token), log)


def dial(proxy_port: int, callee_port: int, call: Call, folder: Path) -> tuple[SippResult, SippUas]:
    """One call through the proxy to a fresh SIPp callee (``call.expect`` 200: answered, with ACK
    and BYE); what the caller got back and the callee (whose ``requests()`` say what reached it)."""
    callee = SippUas.start(callee_port, folder / "callee")
    try:
        scenario = answered_uac_scenario(call) if call.expect == 200 else uac_scenario(call)
        caller = run_sipp(scenario, f"127.0.0.1:{proxy_port}", folder / "caller")
    finally:
        if call.expect == 200:
            callee.wait()
        else:
            callee.stop()
    return caller, callee
