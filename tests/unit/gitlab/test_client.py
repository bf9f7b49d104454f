"""CoordinatorClient against httpx2's MockTransport: the wire format and status mapping."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2 as httpx
import pytest
import stamina
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from skyrunner.errors import ApiAuthError, ApiError, ApiUnavailable, TraceRangeError
from skyrunner.gitlab.client import CoordinatorClient, parse_range_end
from skyrunner.gitlab.models import FEATURE_KEYS, RunnerInfo, build_features
from skyrunner.job.coordinator import JobRef, JobUpdate

JOB = JobRef(42, SecretStr("glcbt-jobtoken"))


@pytest.fixture(autouse=True)
def _no_retry_waits() -> None:
    stamina.set_testing(True, attempts=3)


def client(handler: Callable[[httpx.Request], httpx.Response]) -> CoordinatorClient:
    info = RunnerInfo(version="0.1.0", revision="abc", executor="shell")
    return CoordinatorClient(
        "https://gitlab.example/",
        token=SecretStr("glrt-runner"),
        system_id="r_abcdefabcdef",
        info=info,
        transport=httpx.MockTransport(handler),
    )


async def test_patch_trace_sends_an_inclusive_content_range() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            202, headers={"Range": "0-15", "Job-Status": "running", "X-GitLab-Trace-Update-Interval": "30"}
        )

    async with client(handler) as api:
        result = await api.patch_trace(JOB, 10, b"abcdef")
    request = seen[0]
    assert request.method == "PATCH" and request.url.path == "/api/v4/jobs/42/trace"
    assert request.headers["Content-Range"] == "10-15"
    assert request.headers["JOB-TOKEN"] == "glcbt-jobtoken"
    assert request.headers["Content-Type"] == "text/plain"
    assert (result.stored, result.job_status, result.update_interval_s) == (15, "running", 30.0)


@given(offset=st.integers(min_value=0, max_value=2**40), size=st.integers(min_value=1, max_value=2**20))
def test_content_range_end_is_inclusive(offset: int, size: int) -> None:
    header = f"{offset}-{offset + size - 1}"
    start, end = (int(x) for x in header.split("-"))
    assert end - start + 1 == size
    assert parse_range_end(f"0-{offset + size}") == offset + size


async def test_416_becomes_a_range_error_with_gitlabs_size() -> None:
    async with client(lambda r: httpx.Response(416, headers={"Range": "0-7"})) as api:
        with pytest.raises(TraceRangeError) as caught:
            await api.patch_trace(JOB, 10, b"x")
    assert caught.value.stored == 7


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (403, ApiAuthError),
        (404, ApiAuthError),
        (409, ApiAuthError),
        (400, ApiError),
        (500, ApiUnavailable),
        (429, ApiUnavailable),
        (408, ApiUnavailable),
    ],
    ids=["403", "404", "409", "400", "500", "429", "408"],
)
async def test_update_statuses_map_to_the_error_tree(status: int, error: type[Exception]) -> None:
    async with client(
        lambda r: httpx.Response(status, json={"message": "nope"}, headers={"Job-Status": "failed"})
    ) as api:
        with pytest.raises(error) as caught:
            await api.update_job(JOB, JobUpdate(state="running"))
    assert "nope" in str(caught.value) and "glcbt" not in str(caught.value)


async def test_transient_errors_are_retried() -> None:
    answers = iter([httpx.Response(502), httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(200)])
    async with client(lambda r: next(answers)) as api:
        result = await api.update_job(JOB, JobUpdate(state="running"))
    assert result.accepted


async def test_network_errors_become_api_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client(handler) as api:
        with pytest.raises(ApiUnavailable, match="unreachable"):
            await api.request_job(None)


async def test_final_update_body_and_202() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(202, headers={"X-GitLab-Trace-Update-Interval": "2"})

    async with client(handler) as api:
        result = await api.update_job(
            JOB,
            JobUpdate(
                state="failed", failure_reason="script_failure", exit_code=3, checksum="crc32:0000abcd", bytesize=9
            ),
        )
    body = bodies[0]
    assert body["token"] == "glcbt-jobtoken" and body["state"] == "failed" and body["exit_code"] == 3
    assert body["output"] == {"checksum": "crc32:0000abcd", "bytesize": 9}
    assert body["failure_reason"] == "script_failure"
    assert not result.accepted and result.update_interval_s == 2.0


async def test_job_request_204_keeps_the_queue_version_and_201_returns_the_payload() -> None:
    answers = iter([
        httpx.Response(204, headers={"X-GitLab-Last-Update": "abc"}),
        httpx.Response(201, json={"id": 1, "token": "t"}),
    ])  # fmt: skip
    requests: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content))
        return next(answers)

    async with client(handler) as api:
        first = await api.request_job(None)
        second = await api.request_job(first.last_update)
    assert first.payload is None and first.last_update == "abc"
    assert second.payload == {"id": 1, "token": "t"}
    assert "last_update" not in requests[0] and requests[1]["last_update"] == "abc"
    assert requests[0]["system_id"] == "r_abcdefabcdef"
    info = requests[0]["info"]
    assert isinstance(info, dict) and set(info["features"]) == set(FEATURE_KEYS)


async def test_job_payload_must_be_json() -> None:
    async with client(lambda r: httpx.Response(201, text="<html>", headers={"Content-Type": "text/html"})) as api:
        with pytest.raises(ApiError, match="not application/json"):
            await api.request_job(None)


def test_features_declare_exactly_what_each_executor_implements() -> None:
    shell, kube = build_features("shell"), build_features("kubernetes")
    assert shell["cancel_gracefully"] and shell["trace_checksum"] and shell["return_exit_code"]
    assert not shell["image"] and not shell["services"] and shell["shared"]
    assert kube["image"] and kube["services"] and not kube["shared"]
    assert not shell["terminal"] and not shell["session"] and not shell["vault_secrets"]


async def test_only_the_job_request_waits_longer_for_its_answer() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path.rsplit("/", 1)[-1]] = request.extensions["timeout"]
        return httpx.Response(204 if request.url.path.endswith("request") else 200, json={"id": 1, "token": "t"})

    async with client(handler) as api:
        await api.request_job(None)
        await api.verify()
    limits = {"connect": 30.0, "write": 60.0, "pool": 60.0}
    assert seen == {"request": {**limits, "read": 75.0}, "verify": {**limits, "read": 60.0}}
