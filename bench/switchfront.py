"""Benchmark (not a test): the SIP front's answer time over Decide's, beside SIPp and a trivial responder.

Runs, on this machine and in one script, at production settings (decision's 4 ms sub-deadlines and
breakers, the front's 20 ms budget):

1. Decide's own saturation (closed-loop gRPC, as ``make bench-decision`` measures it) — "half
   load" is 50 % of it;
2. at that rate: gRPC Decide open loop (client-observed p50/p99) — what a switch with a gRPC
   client would see;
3. at that rate: SIPp → switch front → Decide (INVITE to final answer on the wire) — the front's
   added cost is 3's p99 minus 2's. 2 and 3 alternate in five rounds, so a slow spell of the
   machine falls on both; the per-round differences and their median are reported;
4. at that rate: SIPp → SIPp answering 302 at once (the trivial redirect server) — what SIPp and
   the loopback cost by themselves;
5. SIPp → front at 1.2 x Decide's saturation, at most 200 calls in flight — the calls/s the front
   sustains.

Prints figures and ratios (PNG + markdown report in reports/switchfront/); never fails on a timing.
Run: ``make bench-switchfront`` (needs the local stack).
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.console import Console
from rich.table import Table

from bench.decision import Load, load_setups, open_loop, saturation
from fraudmesh.v1 import call_pb2
from loadtest.processes import REPO_ROOT
from loadtest.sipp import Call, SippLoad, responder_scenario, run_sipp_load, sipp_binary, uac_scenario
from loadtest.switchstack import SwitchStack, free_udp_and_tcp_port, log_folder
from loadtest.wiretime import Capture, answer_times_ms
from services.common import eventloop

console = Console(width=160)
ROUNDS = 5


def _numbers(count: int) -> list[tuple[str, str]]:
    """Distinct valid CN mobile callers and callees (the front reads them like any switch's)."""
    return [(f"+86138{i:08d}", f"+86139{(i * 7919) % 10**8:08d}") for i in range(count)]


def _responder(port: int, calls: int, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "responder.xml"
    scenario.write_text(responder_scenario(), encoding="utf-8")
    command = [
        sipp_binary(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
        "-t", "u1", "-nostdin",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _sipp_timed(target: str, name: str, rate: float, seconds: float, port: int) -> SippLoad:
    """SIPp at ``rate`` against target; answer times from the wire when tcpdump is there."""
    calls = int(rate * seconds)
    scenario = uac_scenario(Call(caller="[field0]", callee="[field1]", timed=True))
    folder = log_folder(f"bench-{name}")
    if not Capture.available():
        return run_sipp_load(scenario, target, folder, rate=rate, calls=calls, numbers=_numbers(calls + 10))
    pcap = folder.parent / f"bench-{name}.pcap"
    with Capture(port, pcap):
        load = run_sipp_load(scenario, target, folder, rate=rate, calls=calls, numbers=_numbers(calls + 10))
    load.answer_ms = answer_times_ms(pcap)
    pcap.unlink()
    return load


def _merged(total: SippLoad, part: SippLoad) -> SippLoad:
    """Two SIPp runs' figures as one (answer times pooled, the rate over their summed span)."""
    seconds = total.seconds + part.seconds
    answered = total.calls_per_s * total.seconds + part.calls_per_s * part.seconds
    return SippLoad(
        total.offered + part.offered,
        total.succeeded + part.succeeded,
        total.failed + part.failed,
        answered / seconds if seconds else 0.0,
        total.answer_ms + part.answer_ms,
        seconds,
    )


def _fail_open(stack: SwitchStack) -> float:
    """Answers the front gave without a decision (timeouts, errors; emergency calls excluded)."""
    every = stack.metric("fraudmesh_switchfront_answers_total")
    return every - stack.metric("fraudmesh_switchfront_answers_total", cause="decided")


def measure(
    env: dict[str, str], in_process: bool, seconds: float, setups: list[call_pb2.CallSetup]
) -> dict[str, Any]:
    """One front mode: Decide's saturation and open loop at half, then SIPp -> front at half and 1.2x."""
    mode = "in-process" if in_process else "gRPC"
    console.print(f"[bold]{mode} front[/]: starting decision and the switch front (production settings) ...")
    stack = SwitchStack.start(env, in_process=in_process)
    try:
        address = f"127.0.0.1:{stack.decision_port}"
        eventloop.run(saturation(address, setups, 4, 2.0))  # warm
        sat = eventloop.run(saturation(address, setups, 32, seconds))
        half = max(10.0, sat * 0.5)
        target = f"127.0.0.1:{stack.sip_port}"
        _sipp_timed(target, f"{mode}-warm", 50, 2, stack.sip_port)  # warm the front's code paths
        grpc_load = Load(half, [], [], 0)
        front = SippLoad(0, 0, 0, 0.0, [])
        rounds: list[tuple[float, float]] = []  # per round: the front's p99 and p50 over Decide's
        before = _fail_open(stack)
        for index in range(ROUNDS):  # interleaved, so a slow spell of the machine hits both sides
            console.print(
                f"  round {index + 1}/{ROUNDS} at {half:,.0f}/s: gRPC Decide, then SIPp -> {mode} front"
            )
            decide = eventloop.run(open_loop(address, setups, half, seconds / ROUNDS))
            answered = _sipp_timed(target, f"{mode}-half", half, seconds / ROUNDS, stack.sip_port)
            rounds.append(
                (
                    answered.pct(0.99) - decide.pct(decide.client_ms, 0.99),
                    answered.pct(0.5) - decide.pct(decide.client_ms, 0.5),
                )
            )
            grpc_load.client_ms += decide.client_ms
            grpc_load.errors += decide.errors
            front = _merged(front, answered)
        fail_open = _fail_open(stack) - before
        console.print(f"  SIPp -> {mode} front at {sat * 1.2:,.0f}/s offered ...")
        pushed = _sipp_timed(target, f"{mode}-max", sat * 1.2, seconds, stack.sip_port)
        fail_open_max = _fail_open(stack) - before - fail_open
    finally:
        stack.stop()
    return {
        "mode": mode,
        "sat": sat,
        "half": half,
        "grpc": grpc_load,
        "front": front,
        "max": pushed,
        "fail_open": fail_open,
        "fail_open_max": fail_open_max,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "data" / "ci")
    parser.add_argument("--seconds", type=float, default=20.0, help="per load level (split over the rounds)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "switchfront")
    args = parser.parse_args(argv)
    env = {key: value for key, value in os.environ.items() if key.startswith("FRAUDMESH_")}
    setups = load_setups(args.dataset, 2000) if (args.dataset / "manifest.json").exists() else []
    if not setups:
        console.print(f"[yellow]no dataset at {args.dataset}: Decide is driven with generated numbers[/]")
        setups = [_setup(i, a, b) for i, (a, b) in enumerate(_numbers(2000))]
    if not Capture.available():
        console.print("[yellow]tcpdump is not installed: answer times are SIPp's own (whole milliseconds)[/]")
    modes = [measure(env, True, args.seconds, setups), measure(env, False, args.seconds, setups)]
    half = modes[0]["half"]
    console.print(f"SIPp -> SIPp trivial 302 responder at {half:,.0f}/s ...")
    port = free_udp_and_tcp_port()
    responder = _responder(port, int(half * args.seconds) + 10, log_folder("bench-responder-uas"))
    try:
        trivial = _sipp_timed(f"127.0.0.1:{port}", "trivial", half, args.seconds, port)
    finally:
        responder.terminate()
        responder.wait(10)
    report(modes, trivial, args.out)
    return 0


def _setup(index: int, caller: str, callee: str) -> call_pb2.CallSetup:
    return call_pb2.CallSetup(
        call_id=f"bench-{index}", tenant="demo-cn", calling_number=caller, called_number=callee
    )


def _row(name: str, load: SippLoad, extra: str) -> tuple[str, float, float, int, int, float, float, str]:
    offered = load.offered / load.seconds if load.seconds else 0.0
    return (
        name,
        offered,
        load.calls_per_s,
        load.succeeded,
        load.failed,
        load.pct(0.5),
        load.pct(0.99),
        extra,
    )


def _summary(mode: dict[str, Any]) -> str:
    p99 = sorted(r[0] for r in mode["rounds"])
    p50 = sorted(r[1] for r in mode["rounds"])
    return (
        f"{mode['mode']}: Decide saturation {mode['sat']:,.0f}/s; the front over gRPC Decide per round: "
        f"p99 {', '.join(f'{v:+.2f}' for v in p99)} ms (median {p99[len(p99) // 2]:+.2f}), "
        f"p50 {', '.join(f'{v:+.2f}' for v in p50)} ms (median {p50[len(p50) // 2]:+.2f}); fail-open answers "
        f"{mode['fail_open']:.0f} at half load, {mode['fail_open_max']:.0f} at 1.2x saturation"
    )


def report(modes: list[dict[str, Any]], trivial: SippLoad, out: Path) -> None:
    """Print the table, write the markdown report and the latency plot."""
    table = Table(
        title="Switch front: answer times on the wire, beside gRPC Decide and a trivial 302 responder"
    )
    for column in ("path", "offered/s", "answered/s", "ok", "failed", "p50 ms", "p99 ms", "p99 over Decide"):
        table.add_column(column, justify="right" if column != "path" else "left")
    lines: list[tuple[str, float, float, int, int, float, float, str]] = []
    for mode in modes:
        grpc_load: Load = mode["grpc"]
        grpc_p99 = grpc_load.pct(grpc_load.client_ms, 0.99)
        lines.append(
            (
                f"gRPC Decide (client), {mode['mode']} run",
                mode["half"],
                mode["half"],
                len(grpc_load.client_ms),
                grpc_load.errors,
                grpc_load.pct(grpc_load.client_ms, 0.5),
                grpc_p99,
                "",
            )
        )
        for key, label in (("front", "at half"), ("max", "at 1.2x sat")):
            load: SippLoad = mode[key]
            extra = f"{load.pct(0.99) - grpc_p99:+.2f} ms" if key == "front" else ""
            lines.append(_row(f"SIPp -> {mode['mode']} front {label}", load, extra))
    lines.append(_row("SIPp -> trivial 302 responder", trivial, ""))
    for name, offered, rate, ok, failed, p50, p99, extra in lines:
        table.add_row(
            name, f"{offered:,.0f}", f"{rate:,.0f}", str(ok), str(failed), f"{p50:.2f}", f"{p99:.2f}", extra
        )
    console.print(table)
    for mode in modes:
        console.print(_summary(mode))
    out.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(8, 4))
    curves = [(f"gRPC Decide ({m['mode']} run)", m["grpc"].client_ms) for m in modes]
    curves += [(f"SIPp -> {m['mode']} front", m["front"].answer_ms) for m in modes]
    curves.append(("SIPp -> trivial 302", trivial.answer_ms))
    for name, values in curves:
        if values:
            ordered = sorted(values)
            axis.plot(ordered, [i / len(ordered) for i in range(len(ordered))], label=name)
    axis.set_xscale("log")
    axis.set_xlabel("answer time (ms, log)")
    axis.set_ylabel("share of calls")
    axis.set_title("Answer times at half of Decide's saturation")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "answer-times.png", dpi=110)
    plt.close(figure)
    markdown = [
        "# Switch front benchmark",
        "",
        "| path | offered/s | answered/s | ok | failed | p50 ms | p99 ms | p99 over Decide |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {n} | {o:,.0f} | {r:,.0f} | {k} | {f} | {a:.2f} | {b:.2f} | {e} |"
            for n, o, r, k, f, a, b, e in lines
        ],
        "",
        *[f"- {_summary(m)}" for m in modes],
        "",
        "![answer times](answer-times.png)",
        "",
    ]
    (out / "README.md").write_text("\n".join(markdown), encoding="utf-8")
    console.print(f"report: {out / 'README.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
