"""The main job's mesh: a service that dies at start gets one more try, then the run says why."""

from __future__ import annotations

import time

import pytest

from loadtest.mesh import Mesh, MeshError, free_port

pytestmark = pytest.mark.integration


def test_a_service_that_keeps_dying_at_start_fails_after_one_retry() -> None:
    mesh = Mesh()
    port = free_port()
    # A module that does not exist exits at once, as a crashed service would.
    mesh.spawn("broken", "services.no_such_service", {"FRAUDMESH_GRPC_PORT": str(port)})
    first = mesh.processes["broken"]
    started = time.monotonic()
    with pytest.raises(MeshError, match=r"No module named services\.no_such_service"):
        mesh._wait_serving("broken", port, "fraudmesh.v1.DecisionService", timeout_s=30)
    assert mesh.processes["broken"] is not first, "it was started a second time"
    assert not mesh.processes["broken"].alive()
    assert time.monotonic() - started < 30, "a dead process is not waited on until the timeout"
    mesh.processes["broken"].stop()
