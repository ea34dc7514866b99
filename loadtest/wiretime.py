"""Answer times on the wire: tcpdump on the loopback, INVITEs paired with their final answers.

SIPp's own response timer counts whole milliseconds, too coarse for a budget of one; the kernel's
capture timestamps are microseconds, and they time what a switch would see (the INVITE leaving,
the answer arriving) for the front and for SIPp's trivial responder alike. ``Capture`` runs
tcpdump (Debian's, as root) for one UDP port; ``answer_times_ms`` reads the pcap file (the classic
format, microsecond timestamps, Linux loopback's Ethernet framing) and pairs each Call-ID's first
INVITE with its first final response (status 200-699).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Final

__all__ = ["Capture", "answer_times_ms"]

_PCAP_MAGIC_US: Final = 0xA1B2C3D4
_ETHERNET: Final = 1


class Capture:
    """tcpdump writing one UDP port's loopback traffic to a pcap file while in a ``with`` block."""

    def __init__(self, port: int, path: Path) -> None:
        self.port = port
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        """True when tcpdump is installed (``make deps`` does not need it; the benchmark prefers it)."""
        return shutil.which("tcpdump") is not None

    def __enter__(self) -> Capture:
        binary = shutil.which("tcpdump")
        if binary is None:
            raise RuntimeError("tcpdump is not installed: apt-get install tcpdump")
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
            [
                binary,
                "-i",
                "lo",
                "-n",
                "-U",
                "-s",
                "2048",
                "-w",
                str(self.path),
                "udp",
                "port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (self.path.exists() and self.path.stat().st_size >= 24):
            time.sleep(0.05)  # the file header is written once the capture listens
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            time.sleep(0.3)  # the last answers reach the file
            self._process.terminate()
            self._process.wait(10)


def answer_times_ms(path: Path) -> list[float]:
    """Per call, ms from its first INVITE on the wire to its first final answer."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    if magic != _PCAP_MAGIC_US or link != _ETHERNET:
        raise ValueError(f"{path}: not a microsecond pcap of an Ethernet-framed loopback capture")
    sent: dict[bytes, float] = {}
    times: list[float] = []
    answered: set[bytes] = set()
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, captured, _ = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        payload = _udp_payload(frame)
        if payload is None:
            continue
        stamp = seconds + micros / 1e6
        call_id = _call_id(payload)
        if call_id is None:
            continue
        if payload.startswith(b"INVITE "):
            sent.setdefault(call_id, stamp)
        elif payload.startswith(b"SIP/2.0 ") and payload[8:9] in b"23456" and call_id not in answered:
            started = sent.get(call_id)
            if started is not None:
                answered.add(call_id)
                times.append((stamp - started) * 1000)
    return times


def _udp_payload(frame: bytes) -> bytes | None:
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    header = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != 17:  # UDP
        return None
    return frame[14 + header + 8 :]


def _call_id(payload: bytes) -> bytes | None:
    for line in payload.split(b"\r\n")[1:40]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip()
        if not line:
            break
    return None
