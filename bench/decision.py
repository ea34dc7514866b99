"""Benchmark (not a test): Decide throughput and latency beside an empty grpc.aio server, and scaling.

Runs, on this machine and in one script:

- an empty grpc.aio DecisionService (answers an empty Decision) in its own process — the ceiling;
- the same server answering a full response after reading the trace context, as Decide does — what
  gRPC itself costs a Decide, so the decision's own CPU per call is the difference;
- the real mesh (reputation, origination, decision; loadtest.mesh) with FRAUDMESH_WORKERS = 1 and
  2 decision processes sharing the port (SO_REUSEPORT), replaying the ci dataset's real signed
  setups (repeats of a PASSporT are reported as replays by origination — same cost);

and for each: saturation throughput (closed loop, ``--concurrency`` in flight), then open-loop
load at 50 % and 90 % of that saturation with client-observed and server-side (Decision.latency_us)
p50/p99, and the ratio to the empty server. With ``ghz`` built (``bash deploy/tools/install.sh
ghz``) it also drives the same servers with ghz at the 50 % rate as an external load generator.
Prints figures and ratios; never fails on a timing. Run: ``make bench-decision`` (needs the stack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from fraudmesh.v1 import call_pb2, common_pb2, decision_pb2, decision_pb2_grpc, verdicts_pb2
from loadtest.mesh import Mesh, free_port, wait_serving
from loadtest.model import resolve_model
from loadtest.processes import REPO_ROOT
from services.common import eventloop
from services.common.grpcserver import start_server
from services.common.tracing import incoming_context
from services.decision.service import SERVICE_NAME
from training.dataset import EVENTS, read_records

console = Console(width=180)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class EmptyDecisions(decision_pb2_grpc.DecisionServiceServicer):
    """The baseline: the same RPC answered with an empty Decision."""

    async def Decide(self, request: Any, context: Any) -> decision_pb2.DecideResponse:  # noqa: N802
        return decision_pb2.DecideResponse(decision=verdicts_pb2.Decision(call_id=request.setup.call_id))

    async def DecideStream(  # noqa: N802
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[decision_pb2.DecideResponse]:
        async for request in request_iterator:
            yield await self.Decide(request, context)


class TransportOnly(EmptyDecisions):
    """What gRPC costs a Decide without the decision: the trace context read, a full response built."""

    async def Decide(self, request: Any, context: Any) -> decision_pb2.DecideResponse:  # noqa: N802
        incoming_context(context.invocation_metadata())
        context.time_remaining()
        return decision_pb2.DecideResponse(
            decision=verdicts_pb2.Decision(
                call_id=request.setup.call_id,
                action=common_pb2.ACTION_LABEL,
                score=0.73,
                reason_codes=["MODEL_SCORE", "NEW_NUMBER", "RISKY_RANGE"],
                model_version="model-0123456789ab",
                policy_version="policy-0123456789ab",
                label="Scam Likely",
                degraded=True,
                degraded_reasons=["REDIS_TIMEOUT"],
            ),
            origination=verdicts_pb2.OriginationVerdict(
                shaken_status=verdicts_pb2.SHAKEN_STATUS_VERIFIED,
                reason_codes=["SHAKEN_ATTESTATION_B"],
            ),
        )


def serve_empty(port: int, transport: bool = False) -> None:
    """Process target: serve the empty (or transport-only) DecisionService until terminated."""

    async def run() -> None:
        servicer = TransportOnly() if transport else EmptyDecisions()
        handle = await start_server(
            "127.0.0.1",
            port,
            [SERVICE_NAME],
            [(decision_pb2_grpc.add_DecisionServiceServicer_to_server, servicer)],
        )
        await handle.set_serving(True)
        await asyncio.Event().wait()

    eventloop.run(run())


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by pid and every process below it (0 once gone)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def stack_pids() -> dict[str, int]:
    """The local Kafka broker's and Redis's pids (``make up``), for the CPU table."""
    found = {}
    for name, pattern in (("kafka", "kafka.Kafka"), ("redis", "redis-server")):
        command = ["pgrep", "-o", "-f", pattern]
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if run.stdout.strip():
            found[name] = int(run.stdout.split()[0])
    return found


@dataclass
class Load:
    """One load level's figures."""

    rate: float
    client_ms: list[float]
    server_ms: list[float]
    errors: int

    def pct(self, values: Sequence[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def saturation(
    address: str, setups: Sequence[call_pb2.CallSetup], concurrency: int, seconds: float
) -> float:
    """Closed-loop calls/s with ``concurrency`` in flight."""
    done = 0
    deadline = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)

        async def client(offset: int) -> None:
            nonlocal done
            index = offset
            while time.perf_counter() < deadline:
                await stub.Decide(decision_pb2.DecideRequest(setup=setups[index % len(setups)]), timeout=5.0)
                done += 1
                index += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


async def open_loop(address: str, setups: Sequence[call_pb2.CallSetup], rate: float, seconds: float) -> Load:
    """Send at a fixed rate (independent of answers) and record latencies."""
    result = Load(rate, [], [], 0)
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)

        async def one(setup: call_pb2.CallSetup) -> None:
            sent = time.perf_counter()
            try:
                reply = await stub.Decide(decision_pb2.DecideRequest(setup=setup), timeout=1.0)
            except grpc.aio.AioRpcError:
                result.errors += 1
                return
            result.client_ms.append((time.perf_counter() - sent) * 1000)
            if reply.decision.latency_us:
                result.server_ms.append(reply.decision.latency_us / 1000)

        tasks = []
        started = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(setups[i % len(setups)])))
        await asyncio.gather(*tasks)
    return result


def ghz(address: str, setup: call_pb2.CallSetup, rate: float, seconds: float) -> dict[str, float] | None:
    """Drive address with ghz at a fixed rate; None when ghz is not built."""
    binary = REPO_ROOT / ".stack" / "tools"
    found = sorted(binary.glob("ghz-*/bin/ghz"))
    if not found:
        return None
    payload = json.dumps({"setup": json_format.MessageToDict(setup)})
    with tempfile.NamedTemporaryFile("w", suffix=".json") as data:
        data.write(payload)
        data.flush()
        run = subprocess.run(  # noqa: S603 - the pinned, locally built ghz
            [
                str(found[-1]),
                "--insecure",
                "--proto",
                str(REPO_ROOT / "protos" / "fraudmesh" / "v1" / "decision.proto"),
                "--import-paths",
                str(REPO_ROOT / "protos"),
                "--call",
                "fraudmesh.v1.DecisionService.Decide",
                "--data-file",
                data.name,
                "--rps",
                str(int(rate)),
                "--duration",
                f"{int(seconds)}s",
                "--concurrency",
                "16",
                "--format",
                "json",
                address,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    if run.returncode != 0:
        console.print(f"[yellow]ghz failed: {run.stderr[-500:]}")
        return None
    report = json.loads(run.stdout)
    latencies = {
        item["percentage"]: item["latency"] / 1e6 for item in report.get("latencyDistribution") or []
    }
    return {
        "rps": report["rps"],
        "p50": latencies.get(50, float("nan")),
        "p99": latencies.get(99, float("nan")),
    }


def load_setups(dataset: Path, count: int) -> list[call_pb2.CallSetup]:
    setups = []
    for record in read_records(dataset / EVENTS):
        if record.WhichOneof("record") == "setup":
            setups.append(record.setup.setup)
            if len(setups) >= count:
                break
    return setups


def measure(
    name: str,
    address: str,
    setups: Sequence[call_pb2.CallSetup],
    args: argparse.Namespace,
    pids: dict[str, int],
) -> dict[str, Any]:
    """Saturation (with each process's CPU per call), then open-loop levels and ghz, for one server."""
    console.print(f"[bold]{name}[/]: saturating for {args.seconds:.0f} s ...")
    eventloop.run(saturation(address, setups, 4, 2.0))  # warm the connection and code paths
    watched = {**pids, **stack_pids()}
    before = {who: process_cpu_s(pid) for who, pid in watched.items()}
    client_before = time.process_time()
    started = time.perf_counter()
    sat = eventloop.run(saturation(address, setups, args.concurrency, args.seconds))
    elapsed = time.perf_counter() - started
    cores = {who: (process_cpu_s(pid) - before[who]) / elapsed for who, pid in watched.items()}
    cores["client"] = (time.process_time() - client_before) / elapsed
    levels = {}
    for share in (0.5, 0.9):
        console.print(f"  open loop at {share:.0%} of {sat:,.0f}/s ...")
        levels[share] = eventloop.run(open_loop(address, setups, sat * share, args.seconds))
    external = None if args.no_ghz else ghz(address, setups[0], sat * 0.5, args.seconds)
    return {"name": name, "saturation": sat, "levels": levels, "ghz": external, "cores": cores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "data" / "ci")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="decision process counts to compare")
    parser.add_argument("--no-ghz", action="store_true")
    args = parser.parse_args(argv)
    if not (args.dataset / EVENTS).exists():
        generate = [
            sys.executable,
            "-m",
            "loadtest",
            "generate",
            "--scenario",
            "ci",
            "--out",
            str(args.dataset),
        ]
        subprocess.run(generate, check=True, cwd=REPO_ROOT)  # noqa: S603 - fixed interpreter and module
    setups = load_setups(args.dataset, 5000)
    rows = []
    for name, transport in (("empty grpc.aio server", False), ("gRPC transport only (full response)", True)):
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=serve_empty, args=(port, transport), daemon=True
        )
        server.start()
        wait_serving(f"127.0.0.1:{port}")
        try:
            rows.append(measure(name, f"127.0.0.1:{port}", setups, args, {"server": server.pid or 0}))
        finally:
            server.terminate()
    model = resolve_model(None, REPO_ROOT / "reports" / "placeholder-model")
    for workers in (int(w) for w in args.workers.split(",")):
        bootstrap = os.environ.get("FRAUDMESH_KAFKA_BOOTSTRAP", "")
        mesh = Mesh.start(
            args.dataset / "pki", model, {"FRAUDMESH_WORKERS": str(workers)}, bootstrap=bootstrap
        )
        try:
            pids = {
                "server" if name == "decision" else name: service.process.pid
                for name, service in mesh.processes.items()
            }
            rows.append(
                measure(f"Decide, {workers} decision process(es)", mesh.decide_address, setups, args, pids)
            )
        finally:
            mesh.stop()
    table = Table(title="Decide on this machine (client, server and dependencies share its cores)")
    for column in (
        "server",
        "saturation /s",
        "x empty",
        "50%: client p50/p99 ms",
        "50%: server p50/p99 ms",
        "90%: client p50/p99 ms",
        "90%: server p50/p99 ms",
        "ghz @50%: rps, p50/p99 ms",
    ):
        table.add_column(column, justify="left" if column == "server" else "right")
    base = rows[0]["saturation"]
    for row in rows:
        cells = [row["name"], f"{row['saturation']:,.0f}", f"{row['saturation'] / base:.2f}"]
        for share in (0.5, 0.9):
            load: Load = row["levels"][share]
            cells.append(f"{load.pct(load.client_ms, 0.5):.2f} / {load.pct(load.client_ms, 0.99):.2f}")
            cells.append(
                f"{load.pct(load.server_ms, 0.5):.2f} / {load.pct(load.server_ms, 0.99):.2f}"
                if load.server_ms
                else "-"
            )
        external = row["ghz"]
        cells.append(
            f"{external['rps']:,.0f}, {external['p50']:.2f} / {external['p99']:.2f}"
            if external
            else "not built"
        )
        table.add_row(*cells)
    console.print(table)
    console.print(cpu_table(rows))
    per_call = [row["cores"]["server"] / row["saturation"] * 1e6 for row in rows]
    transport_us = per_call[1]
    decides = rows[2:]
    for row, micros in zip(decides, per_call[2:], strict=True):
        console.print(
            f"{row['name']}: {micros:,.0f} µs of server CPU per call vs {per_call[0]:,.0f} µs for the empty "
            f"server = {per_call[0] / micros:.2f}x its calls per core "
            f"({1e6 / micros:,.0f} decisions per core-second); gRPC's share ~{transport_us:,.0f} µs "
            f"(transport only), the decision's ~{micros - transport_us:,.0f} µs"
        )
    best = max(decides, key=lambda r: r["saturation"]) if decides else None
    if best is not None:
        half: Load = best["levels"][0.5]
        p99 = half.pct(half.server_ms, 0.99)
        console.print(
            f"best Decide: {best['saturation']:,.0f}/s = {best['saturation'] / base:.2f}x the empty server "
            f"(target >= 0.6x: {'met' if best['saturation'] / base >= 0.6 else 'NOT met'}); "
            f"server p99 at half load {p99:.2f} ms (target <= 5 ms: {'met' if p99 <= 5 else 'NOT met'}); "
            f"errors: {sum(load.errors for row in decides for load in row['levels'].values())}"
        )
        if len(decides) > 1:
            scaling = decides[-1]["saturation"] / decides[0]["saturation"]
            console.print(f"scaling 1 → {len(decides)} processes: {scaling:.2f}x")
    return 0


def cpu_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Cores each process used while saturated (the server's CPU per call is what sizes a deployment)."""
    names = list(dict.fromkeys(who for row in rows for who in row["cores"]))
    table = Table(title="Cores used at saturation, per process (2-core machine: everything shares them)")
    table.add_column("server")
    for who in names:
        table.add_column(who, justify="right")
    table.add_column("total", justify="right")
    table.add_column("server CPU µs / call", justify="right")
    for row in rows:
        cores = row["cores"]
        table.add_row(
            row["name"],
            *(f"{cores[who]:.2f}" if who in cores else "-" for who in names),
            f"{sum(cores.values()):.2f}",
            f"{cores['server'] / row['saturation'] * 1e6:,.0f}",
        )
    return table


if __name__ == "__main__":
    raise SystemExit(main())
