"""TraceSink against an in-memory coordinator that keeps GitLab's offset rules."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from skyrunner.errors import ApiAuthError, ApiUnavailable, TraceRangeError
from skyrunner.job._masking import Masker
from skyrunner.job.coordinator import JobRef, JobUpdate, PatchResult, RemoteState, UpdateResult
from skyrunner.job.trace import PATCH_LIMIT, TraceSink, limit_notice


@dataclass
class MemoryCoordinator:
    """GitLab's trace rules in memory: appends only at the stored size, else 416."""

    stored: bytearray = field(default_factory=bytearray)
    patches: list[tuple[int, int]] = field(default_factory=list)
    updates: list[JobUpdate] = field(default_factory=list)
    job_status: str | None = "running"
    fail_next: list[Exception] = field(default_factory=list)

    async def update_job(self, job: JobRef, update: JobUpdate) -> UpdateResult:
        self.updates.append(update)
        return UpdateResult(job_status=self.job_status)

    async def patch_trace(self, job: JobRef, offset: int, data: bytes) -> PatchResult:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.patches.append((offset, len(data)))
        if offset != len(self.stored):
            raise TraceRangeError("416", stored=len(self.stored))
        self.stored += data
        return PatchResult(job_status=self.job_status, stored=len(self.stored))


JOB = JobRef(1, SecretStr("glcbt-token"))


def sink(coordinator: MemoryCoordinator, limit: int = 4096 * 1024, seen: list[RemoteState] | None = None) -> TraceSink:
    states = seen if seen is not None else []
    return TraceSink(coordinator, JOB, Masker(["hunter22"]), output_limit=limit, on_remote_state=states.append)


async def test_everything_reaches_the_coordinator_with_checksum() -> None:
    gitlab = MemoryCoordinator()
    trace = sink(gitlab)
    trace.write(b"hello hunter")
    trace.write(b"22 world\n")
    await trace.close()
    assert bytes(gitlab.stored) == b"hello [MASKED] world\n"
    assert trace.checksum == f"crc32:{zlib.crc32(gitlab.stored):08x}"
    assert trace.bytesize == len(gitlab.stored)


async def test_patches_are_at_most_one_mib() -> None:
    gitlab = MemoryCoordinator()
    trace = sink(gitlab)
    trace.write(b"x" * (PATCH_LIMIT * 2 + 10))
    await trace.close()
    assert gitlab.patches == [(0, PATCH_LIMIT), (PATCH_LIMIT, PATCH_LIMIT), (2 * PATCH_LIMIT, 10)]


async def test_416_resends_from_what_gitlab_has() -> None:
    gitlab = MemoryCoordinator()
    trace = sink(gitlab)
    trace.write(b"0123456789")
    await trace.close()
    del gitlab.stored[4:]  # GitLab lost bytes after 4
    trace.write(b"ignored after close")  # the sink keeps everything it produced
    await trace.close()
    assert bytes(gitlab.stored) == trace.text()


async def test_output_limit_cuts_at_a_utf8_boundary_and_notices_once() -> None:
    gitlab = MemoryCoordinator()
    trace = sink(gitlab, limit=9)
    trace.write("12345678é€".encode())  # byte 9 is the middle of "é"
    trace.write(b"more")
    await trace.close()
    assert bytes(gitlab.stored) == b"12345678" + limit_notice(9)


async def test_403_stops_sending_and_reports_the_job_gone() -> None:
    gitlab = MemoryCoordinator(fail_next=[ApiAuthError("403", status=403, job_status="canceled")])
    seen: list[RemoteState] = []
    trace = sink(gitlab, seen=seen)
    trace.write(b"data")
    await trace.close()
    assert trace.stopped and gitlab.stored == b""
    assert seen[-1].job_status == "canceled"


async def test_unavailable_gitlab_is_retried_on_close() -> None:
    gitlab = MemoryCoordinator(fail_next=[ApiUnavailable("502", status=502)])
    trace = sink(gitlab)
    trace.write(b"data")
    await trace.close()
    assert gitlab.stored == b"data"


async def test_job_status_reaches_the_callback() -> None:
    gitlab = MemoryCoordinator(job_status="canceling")
    seen: list[RemoteState] = []
    trace = sink(gitlab, seen=seen)
    trace.write(b"x")
    await trace.close()
    assert seen and seen[0].cancel_reason() is not None


async def test_a_resumed_sink_continues_the_checksum() -> None:
    gitlab = MemoryCoordinator()
    first = sink(gitlab)
    first.write(b"first part\n")
    position = first.position()
    assert position is not None
    await first.close()
    resumed = TraceSink(
        gitlab,
        JOB,
        Masker(),
        output_limit=4096,
        on_remote_state=lambda s: None,
        start_offset=position[0],
        start_crc=position[1],
    )
    resumed.write(b"second part\n")
    await resumed.close()
    assert bytes(gitlab.stored) == b"first part\nsecond part\n"
    assert resumed.checksum == f"crc32:{zlib.crc32(gitlab.stored):08x}"


def test_position_is_unknown_while_the_masker_holds_bytes() -> None:
    async def scenario() -> None:
        trace = sink(MemoryCoordinator())
        trace.write(b"maybe hunt")
        assert trace.position() is None
        trace.write(b"ing\n")
        assert trace.position() == (trace.bytesize, zlib.crc32(trace.text()))

    import asyncio

    asyncio.run(scenario())


@settings(max_examples=50, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
    loss=st.integers(min_value=0, max_value=2000),
)
def test_any_loss_at_gitlab_is_repaired(chunks: list[bytes], loss: int) -> None:
    import asyncio

    async def scenario() -> None:
        gitlab = MemoryCoordinator()
        trace = sink(gitlab)
        for chunk in chunks[:-1]:
            trace.write(chunk)
        await trace.close()
        del gitlab.stored[max(0, len(gitlab.stored) - loss) :]
        trace._closing = False
        trace.write(chunks[-1])
        await trace.close()
        assert bytes(gitlab.stored) == trace.text()

    asyncio.run(scenario())


@pytest.mark.parametrize("chunk", [b"", b"\n"], ids=["empty", "newline"])
async def test_empty_writes_send_nothing_extra(chunk: bytes) -> None:
    gitlab = MemoryCoordinator()
    trace = sink(gitlab)
    trace.write(chunk)
    await trace.close()
    assert bytes(gitlab.stored) == chunk
