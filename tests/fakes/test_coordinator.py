"""Tests of FakeCoordinator itself, over real HTTP on 127.0.0.1 with httpx2 (and real git)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fakes.coordinator import FakeCoordinator, FakeJob, JobState

FIXTURES = Path("/work/shared/protocol/fixtures")
ALL_FEATURES: dict[str, bool] = json.loads(
    (FIXTURES / "runner_info_features.all-true.gitlab-runner-test.json").read_text()
)
SYSTEM_ID = "s_0123456789ab"


def info(**features: bool) -> dict[str, Any]:
    """Return a runner info declaring every feature but two-phase commit, ``features`` overriding."""
    declared = {**ALL_FEATURES, "two_phase_job_commit": False, **features}
    return {"name": "skyrunner", "version": "0.1.0", "features": declared}


@pytest.fixture
async def gitlab(tmp_path: Path) -> AsyncIterator[FakeCoordinator]:
    async with FakeCoordinator(tmp_path) as fake:
        yield fake


@pytest.fixture
async def client(gitlab: FakeCoordinator) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=f"{gitlab.url}/api/v4", timeout=10.0) as http:
        yield http


async def request_job(
    client: httpx2.AsyncClient,
    token: str,
    *,
    last_update: str | None = None,
    features: Mapping[str, bool] | None = None,
) -> httpx2.Response:
    body: dict[str, Any] = {"token": token, "system_id": SYSTEM_ID, "info": info(**(features or {}))}
    if last_update is not None:
        body["last_update"] = last_update
    return await client.post("/jobs/request", json=body)


async def start_job(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient, **features: bool
) -> tuple[FakeJob, dict[str, Any]]:
    """Queue a job, take it with a new runner, return the job and the payload the runner got."""
    repo = gitlab.git.repos.get("group/project") or gitlab.create_repo("group/project", {"a.txt": "a\n"})
    runner = gitlab.add_runner()
    job = gitlab.enqueue(gitlab.make_job(repo, script=["echo hi"]))
    response = await request_job(client, runner.token, features=features)
    assert response.status_code == 201
    return job, response.json()


async def put(client: httpx2.AsyncClient, job: FakeJob, **body: Any) -> httpx2.Response:
    return await client.put(f"/jobs/{job.id}", json={"token": job.token, **body})


async def patch(client: httpx2.AsyncClient, job: FakeJob, start: int, data: bytes) -> httpx2.Response:
    headers = {
        "JOB-TOKEN": job.token,
        "Content-Type": "text/plain",
        "Content-Range": f"{start}-{start + len(data) - 1}",
    }
    return await client.patch(f"/jobs/{job.id}/trace", content=data, headers=headers)


def crc(data: bytes) -> str:
    return f"crc32:{zlib.crc32(data):08x}"


# -- runner lifecycle ------------------------------------------------------------------------------


async def test_register_legacy_runner_stores_its_settings(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    body = {
        "token": "GR1348941testregistration",
        "description": "python-runner",
        "tag_list": "python, linux",
        "run_untagged": False,
        "locked": True,
        "maximum_timeout": 3600,
        "paused": False,
        "info": {"name": "skyrunner", "version": "0.1.0"},
    }
    response = await client.post("/runners", json=body)
    assert response.status_code == 201
    details = response.json()
    assert set(details) == {"id", "token", "token_expires_at"}
    assert details["token"].startswith("glrtr-")
    runner = gitlab.runners[details["token"]]
    assert (runner.id, runner.description, runner.tag_list) == (
        details["id"],
        "python-runner",
        ["python", "linux"],
    )
    assert (runner.run_untagged, runner.locked, runner.paused, runner.maximum_timeout) == (
        False,
        True,
        False,
        3600,
    )
    assert runner.last_info == {"name": "skyrunner", "version": "0.1.0"}


@pytest.mark.parametrize(
    ("body", "enabled", "status"),
    [
        ({"token": "wrong"}, True, 403),
        ({}, True, 400),
        ({"token": "GR1348941testregistration"}, False, 410),
        ({"token": "wrong"}, False, 410),
        ({"token": "GR1348941testregistration", "maximum_timeout": 60}, True, 400),
        ({"token": "GR1348941testregistration", "run_untagged": False}, True, 400),
        ({"token": "GR1348941testregistration", "active": True, "paused": False}, True, 400),
        ({"token": "GR1348941testregistration", "access_level": "everyone"}, True, 400),
    ],
    ids=["bad-token", "no-token", "disabled", "disabled-any-token", "short-timeout", "untagged-no-tags",
         "active-and-paused", "bad-access-level"],
)  # fmt: skip
async def test_register_refusals(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient, body: dict[str, Any], enabled: bool, status: int
) -> None:
    gitlab.registration_enabled = enabled
    response = await client.post("/runners", json=body)
    assert response.status_code == status
    assert "message" in response.json()
    assert gitlab.runners == {}


async def test_register_validation_errors_name_the_field(client: httpx2.AsyncClient) -> None:
    body = {"token": "GR1348941testregistration", "maximum_timeout": 60, "run_untagged": False}
    response = await client.post("/runners", json=body)
    assert response.json() == {
        "message": {
            "maximum_timeout": ["needs to be at least 10 minutes"],
            "tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"],
        }
    }


async def test_verify_records_the_manager_and_its_features(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    runner = gitlab.add_runner(description="new-flow")
    assert runner.token.startswith("glrt-")
    body = {"token": runner.token, "system_id": SYSTEM_ID, "info": info(cancel_gracefully=True)}
    response = await client.post("/runners/verify", json=body)
    assert response.status_code == 200
    assert response.json() == {"id": runner.id, "token": runner.token, "token_expires_at": None}
    assert runner.managers[SYSTEM_ID]["features"]["cancel_gracefully"] is True
    assert runner.last_info == body["info"]
    assert (await client.post("/runners/verify", json={"token": "glrt-unknown"})).status_code == 403
    assert (await client.post("/runners/verify", json={})).status_code == 400


async def test_unregister_deletes_the_runner(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    runner = gitlab.add_runner()
    response = await client.request("DELETE", "/runners", json={"token": runner.token})
    assert response.status_code == 204
    assert gitlab.runners == {}
    again = await client.request("DELETE", "/runners", json={"token": runner.token})
    assert again.status_code == 403


async def test_unregister_manager_keeps_the_runner(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    runner = gitlab.add_runner()
    await client.post("/runners/verify", json={"token": runner.token, "system_id": SYSTEM_ID})
    body = {"token": runner.token, "system_id": SYSTEM_ID}
    assert (await client.request("DELETE", "/runners/managers", json=body)).status_code == 204
    assert runner.managers == {} and runner.token in gitlab.runners
    gone = await client.request("DELETE", "/runners/managers", json=body)
    assert (gone.status_code, gone.json()) == (404, {"message": "404 Runner manager not found Not Found"})
    missing = await client.request("DELETE", "/runners/managers", json={"token": runner.token})
    assert missing.status_code == 400


async def test_reset_token_rotates_it(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    runner = gitlab.add_runner()
    old = runner.token
    response = await client.post("/runners/reset_authentication_token", json={"token": old})
    assert response.status_code == 201
    new = response.json()["token"]
    assert new != old and new.startswith("glrt-") and gitlab.runners[new] is runner
    assert (await client.post("/runners/verify", json={"token": old})).status_code == 403
    assert (await client.post("/runners/verify", json={"token": new})).status_code == 200


# -- job request -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"), [({}, 400), ({"token": "glrt-nobody"}, 403)], ids=["no-token", "unknown-token"]
)
async def test_request_refusals(client: httpx2.AsyncClient, body: dict[str, Any], status: int) -> None:
    response = await client.post("/jobs/request", json=body)
    assert response.status_code == status
    assert "message" in response.json()


async def test_request_answers_204_then_201_with_the_job(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    runner = gitlab.add_runner()
    empty = await request_job(client, runner.token)
    assert empty.status_code == 204
    assert len(empty.headers["X-GitLab-Last-Update"]) == 32
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    job = gitlab.enqueue(gitlab.make_job(repo, script=["echo hi"]))
    got = await request_job(client, runner.token, last_update=empty.headers["X-GitLab-Last-Update"])
    assert got.status_code == 201
    assert got.headers["Content-Type"] == "application/json"
    assert "X-GitLab-Last-Update" not in got.headers
    assert got.json()["id"] == job.id and got.json() == job.payload
    assert (job.state, job.runner_token, job.system_id) == (JobState.RUNNING, runner.token, SYSTEM_ID)
    assert runner.managers[SYSTEM_ID]["features"] == info()["features"]
    recorded = [r for r in gitlab.requests if r.path == "/api/v4/jobs/request"]
    assert recorded[-1].json["info"]["features"]["cancel_gracefully"] is True
    assert recorded[-1].status == 201


async def test_request_with_current_last_update_is_answered_from_cache(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    runner = gitlab.add_runner()
    version = (await request_job(client, runner.token)).headers["X-GitLab-Last-Update"]
    again = await request_job(client, runner.token, last_update=version)
    assert (again.status_code, again.headers["X-GitLab-Last-Update"]) == (204, version)


async def test_long_poll_is_woken_by_enqueue(tmp_path: Path) -> None:
    async with (
        FakeCoordinator(tmp_path, long_poll_s=20) as gitlab,
        httpx2.AsyncClient(base_url=f"{gitlab.url}/api/v4", timeout=30.0) as client,
    ):
        runner = gitlab.add_runner()
        version = (await request_job(client, runner.token)).headers["X-GitLab-Last-Update"]
        held = asyncio.create_task(request_job(client, runner.token, last_update=version))
        await asyncio.sleep(0.05)
        assert not held.done()
        job = gitlab.enqueue(gitlab.make_job(gitlab.create_repo("g/p", {"a": "a"}), script=["true"]))
        async with asyncio.timeout(2):
            woken = await held
        assert woken.status_code == 204
        assert "X-GitLab-Last-Update" not in woken.headers
        assert woken.headers["Gitlab-Ci-Builds-Polling"] == "yes"
        got = await request_job(client, runner.token, last_update=version)
        assert (got.status_code, got.json()["id"]) == (201, job.id)


async def test_long_poll_times_out_without_last_update(tmp_path: Path) -> None:
    async with (
        FakeCoordinator(tmp_path, long_poll_s=0.05) as gitlab,
        httpx2.AsyncClient(base_url=f"{gitlab.url}/api/v4", timeout=5.0) as client,
    ):
        runner = gitlab.add_runner()
        version = (await request_job(client, runner.token)).headers["X-GitLab-Last-Update"]
        timed_out = await request_job(client, runner.token, last_update=version)
        assert timed_out.status_code == 204 and "X-GitLab-Last-Update" not in timed_out.headers


async def test_stopping_releases_held_long_polls(tmp_path: Path) -> None:
    gitlab = FakeCoordinator(tmp_path, long_poll_s=60)
    await gitlab.__aenter__()
    async with httpx2.AsyncClient(base_url=f"{gitlab.url}/api/v4", timeout=30.0) as client:
        runner = gitlab.add_runner()
        version = (await request_job(client, runner.token)).headers["X-GitLab-Last-Update"]
        held = asyncio.create_task(request_job(client, runner.token, last_update=version))
        await asyncio.sleep(0.05)
        async with asyncio.timeout(5):
            await gitlab.__aexit__(None, None, None)
            assert (await held).status_code == 204


@pytest.mark.parametrize(
    ("job_kwargs", "enqueue_kwargs", "feature"),
    [
        ({"artifacts": [{"name": "junit.xml", "paths": ["r.xml"], "artifact_type": "junit",
                         "artifact_format": "gzip", "when": "always"}]}, {}, "upload_multiple_artifacts"),
        ({"artifacts": [{"paths": ["out/"], "exclude": ["out/*.tmp"]}]}, {}, "artifacts_exclude"),
        ({}, {"allow_failure_exit_codes": [3]}, "return_exit_code"),
        ({"cache": [{"key": "k", "paths": ["v/"], "fallback_keys": ["main"]}]}, {}, "fallback_cache_keys"),
    ],
    ids=["reports", "exclude", "exit-codes", "fallback-keys"],
)  # fmt: skip
async def test_job_needing_an_undeclared_feature_is_dropped(
    gitlab: FakeCoordinator,
    client: httpx2.AsyncClient,
    job_kwargs: dict[str, Any],
    enqueue_kwargs: dict[str, Any],
    feature: str,
) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    runner = gitlab.add_runner()
    needy = gitlab.enqueue(gitlab.make_job(repo, script=["true"], **job_kwargs), **enqueue_kwargs)
    plain = gitlab.enqueue(gitlab.make_job(repo, script=["true"]))
    got = await request_job(client, runner.token, features={feature: False})
    assert (got.status_code, got.json()["id"]) == (201, plain.id)
    assert (needy.state, needy.failure_reason) == (JobState.FAILED, "runner_unsupported")
    served = gitlab.enqueue(gitlab.make_job(repo, script=["true"], **job_kwargs), **enqueue_kwargs)
    assert (await request_job(client, runner.token)).json()["id"] == served.id


async def test_matching_honours_tags_restrictions_and_pause(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    plain = gitlab.add_runner(tag_list=["linux"])
    gpu = gitlab.add_runner(tag_list=["linux", "gpu"], run_untagged=False)
    paused = gitlab.add_runner(paused=True)
    tagged = gitlab.enqueue(gitlab.make_job(repo, script=["true"]), tags=["gpu"])
    only_plain = gitlab.enqueue(gitlab.make_job(repo, script=["true"]), runner_token=plain.token)
    assert (await request_job(client, paused.token)).status_code == 204
    assert (await request_job(client, gpu.token)).json()["id"] == tagged.id
    assert (await request_job(client, gpu.token)).status_code == 204  # untagged jobs are not for it
    assert (await request_job(client, plain.token)).json()["id"] == only_plain.id


async def test_assignment_applies_the_runner(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    runner = gitlab.add_runner(description="small", tag_list=["a", "b"], maximum_timeout=900)
    gitlab.set_artifacts(999, b"PK\x05\x06" + bytes(18), "artifacts.zip")
    deps = [{"id": 999, "name": "build"}, {"id": 998, "name": "lint"}]
    gitlab.enqueue(
        gitlab.make_job(repo, script=["true"], after_script=["true"], timeout=3600, dependencies=deps)
    )
    payload = (await request_job(client, runner.token)).json()
    assert payload["runner_info"]["timeout"] == 900
    assert [step["timeout"] for step in payload["steps"]] == [900, 900]
    variables = {v["key"]: v["value"] for v in payload["variables"]}
    assert (variables["CI_RUNNER_ID"], variables["CI_RUNNER_DESCRIPTION"]) == (str(runner.id), "small")
    assert variables["CI_RUNNER_TAGS"] == '["a", "b"]'
    assert variables["CI_JOB_STARTED_AT"].endswith("Z")
    assert payload["dependencies"] == [
        {
            "id": 999,
            "name": "build",
            "token": payload["token"],
            "artifacts_file": {"filename": "artifacts.zip", "size": 22},
        },
        {"id": 998, "name": "lint", "token": payload["token"]},
    ]


async def test_two_phase_commit_keeps_the_job_pending_until_accepted(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, _ = await start_job(gitlab, client, two_phase_job_commit=True)
    assert job.state is JobState.PENDING
    keepalive = await put(client, job, state="pending")
    assert (keepalive.status_code, keepalive.headers["Job-Status"]) == (200, "pending")
    accepted = await put(client, job, state="running")
    assert (accepted.status_code, accepted.headers["Job-Status"], job.state) == (
        200,
        "running",
        JobState.RUNNING,
    )


async def test_enqueue_many_supplies_jobs_on_demand(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    runner = gitlab.add_runner()
    gitlab.enqueue_many(repo, 3, script=["echo bench"])
    ids = [(await request_job(client, runner.token)).json()["id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(gitlab.jobs[i].state is JobState.RUNNING for i in ids)
    assert (await request_job(client, runner.token)).status_code == 204
    gitlab.enqueue_many(repo)  # endless
    gitlab.record_requests = False
    answers = [await request_job(client, runner.token) for _ in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    assert gitlab.requests[-1].path == "/api/v4/jobs/request" and gitlab.requests[-1].status == 204


# -- the payload ---------------------------------------------------------------------------------------


async def test_make_job_builds_every_key_gitlab_sends(gitlab: FakeCoordinator) -> None:
    reference = json.loads((FIXTURES / "job_response.full.reconstructed.json").read_text())
    repo = gitlab.create_repo("my-group/my-project", {"a.txt": "a\n"})
    hooks = [{"name": "pre_get_sources_script", "script": ["echo pre"]}]
    payload = gitlab.make_job(repo, script=["make"], hooks=hooks, variables={"GREETING": "hi"})
    assert list(payload) == [key for key in reference if key != "inputs"]  # inputs: job_inputs runners only
    for part in ("job_info", "git_info", "runner_info"):
        assert list(payload[part]) == list(reference[part]), part
    assert payload["features"] == reference["features"]
    assert payload["token"].startswith("glcbt-")
    variables = {v["key"]: v for v in payload["variables"]}
    assert variables["CI_JOB_TOKEN"] == {
        "key": "CI_JOB_TOKEN",
        "value": payload["token"],
        "public": False,
        "masked": True,
    }
    assert variables["CI_SERVER_URL"]["value"] == gitlab.url
    assert variables["CI_API_V4_URL"]["value"] == f"{gitlab.url}/api/v4"
    assert variables["CI_PROJECT_PATH"]["value"] == "my-group/my-project"
    assert variables["CI_COMMIT_SHA"]["value"] == payload["git_info"]["sha"] == repo.head()
    assert "CI_PROJECT_DIR" not in variables and "CI_BUILDS_DIR" not in variables
    assert payload["variables"][-1] == {"key": "GREETING", "value": "hi", "public": True, "masked": False}
    port = gitlab.url.rsplit(":", 1)[1]
    expected_url = f"http://gitlab-ci-token:{payload['token']}@127.0.0.1:{port}/my-group/my-project.git"
    assert payload["git_info"]["repo_url"] == expected_url
    assert payload["image"] is None and payload["artifacts"] is None and payload["hooks"] == hooks


@pytest.mark.parametrize(
    ("ref", "depth", "refspecs"),
    [
        ("main", 0, ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]),
        ("main", 20, ["+refs/heads/main:refs/remotes/origin/main"]),
        ("v1.0", 5, ["+refs/tags/v1.0:refs/tags/v1.0"]),
    ],
    ids=["full-clone", "shallow-branch", "shallow-tag"],
)
async def test_refspecs_start_with_the_persistent_pipeline_ref(
    gitlab: FakeCoordinator, ref: str, depth: int, refspecs: list[str]
) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    repo.set_ref("refs/tags/v1.0", repo.head() or "")
    payload = gitlab.make_job(repo, script=["true"], ref=ref, depth=depth, pipeline_id=77)
    assert payload["git_info"]["refspecs"] == ["+refs/pipelines/77:refs/pipelines/77", *refspecs]
    assert payload["git_info"]["ref_type"] == ("tag" if ref == "v1.0" else "branch")
    rev_parse = ["git", "rev-parse", "refs/pipelines/77"]
    pipeline_ref = await asyncio.to_thread(
        subprocess.run, rev_parse, cwd=repo.dir, capture_output=True, text=True, check=True
    )
    assert pipeline_ref.stdout.strip() == payload["git_info"]["sha"]


async def test_make_job_normalizes_entries(gitlab: FakeCoordinator) -> None:
    repo = gitlab.create_repo("group/project", {"a.txt": "a\n"})
    payload = gitlab.make_job(
        repo,
        script=["true"],
        variables=[{"key": "SECRET", "value": "s3cr3t", "masked": True, "file": False, "raw": True}],
        cache=[{"key": "gems", "paths": ["vendor/"], "fallback_keys": ["base"]}],
        artifacts=[{"paths": ["out/"]}],
        image={"name": "python:3.12"},
        allow_git_fetch=False,
    )
    assert payload["variables"][-1] == {
        "key": "SECRET",
        "value": "s3cr3t",
        "public": True,
        "masked": True,
        "raw": True,
    }
    assert payload["cache"][0]["key"] == "gems-protected"
    assert payload["cache"][0]["fallback_keys"] == ["base-protected"]
    assert payload["artifacts"][0]["artifact_type"] == "archive" and "exclude" not in payload["artifacts"][0]
    assert payload["image"]["name"] == "python:3.12" and payload["image"]["entrypoint"] is None
    assert payload["allow_git_fetch"] is False
    assert gitlab.make_job(repo, script=["true"], steps=[])["steps"] == []  # extra keys override
    with pytest.raises(ValueError, match="no branch or tag named 'nope'"):
        gitlab.make_job(repo, script=["true"], ref="nope")


# -- git ---------------------------------------------------------------------------------------------


async def ls_remote(url: str) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    proc = await asyncio.create_subprocess_exec(
        "git", "ls-remote", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_git_accepts_only_the_token_of_a_live_job(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, payload = await start_job(gitlab, client)
    code, refs = await ls_remote(payload["git_info"]["repo_url"])
    assert code == 0 and f"refs/pipelines/{payload['job_info']['pipeline_id']}" in refs
    gitlab.fail_next("git", 500)
    assert (await ls_remote(payload["git_info"]["repo_url"]))[0] != 0
    await put(client, job, state="success")
    assert (await ls_remote(payload["git_info"]["repo_url"]))[0] != 0
    assert gitlab.git.requests[-1].status == 401


# -- job updates -----------------------------------------------------------------------------------


async def test_put_keepalive_and_final_success_with_checksum(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, _ = await start_job(gitlab, client)
    alive = await put(client, job, state="running")
    assert (alive.status_code, alive.text, alive.headers["Job-Status"]) == (200, "200", "running")
    assert (await patch(client, job, 0, b"hello\n")).status_code == 202
    final = await put(client, job, state="success", output={"checksum": crc(b"hello\n"), "bytesize": 6})
    assert (final.status_code, final.headers["Job-Status"]) == (200, "success")
    assert "X-GitLab-Trace-Update-Interval" not in final.headers
    assert (job.state, job.checksum_ok, len(job.updates)) == (JobState.SUCCESS, True, 2)
    assert (await gitlab.wait_for_job(job.id, timeout=1)) is job
    late = await put(client, job, state="running")
    assert (late.status_code, late.headers["Job-Status"]) == (403, "success")


@pytest.mark.parametrize(
    ("output", "ok"),
    [
        ({"checksum": crc(b"abc"), "bytesize": 3}, True),
        ({"checksum": crc(b"abd"), "bytesize": 3}, False),
        ({"checksum": crc(b"abc"), "bytesize": 4}, False),
        (None, None),
    ],
    ids=["match", "bad-crc", "bad-size", "absent"],
)
async def test_final_update_checks_the_trace(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient, output: dict[str, Any] | None, ok: bool | None
) -> None:
    job, _ = await start_job(gitlab, client)
    await patch(client, job, 0, b"abc")
    body = {"state": "failed", "failure_reason": "script_failure", "exit_code": 2}
    await put(client, job, **body, **({"output": output} if output else {}))
    assert (job.state, job.failure_reason, job.exit_code, job.checksum_ok) == (
        JobState.FAILED,
        "script_failure",
        2,
        ok,
    )


async def test_put_edge_cases(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client)
    wrong = await client.put(f"/jobs/{job.id}", json={"token": "glcbt-wrong", "state": "running"})
    assert (wrong.status_code, "Job-Status" in wrong.headers) == (403, False)
    assert (await client.put("/jobs/424242", json={"token": job.token})).status_code == 403
    assert (await put(client, job, state="exploded")).status_code == 400
    body = {"state": "failed", "failure_reason": "made_up"}
    by_header = await client.put(f"/jobs/{job.id}", json=body, headers={"JOB-TOKEN": job.token})
    assert by_header.status_code == 200
    assert (job.state, job.failure_reason) == (JobState.FAILED, "unknown_failure")


async def test_final_update_202_repeats_until_accepted(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, _ = await start_job(gitlab, client)
    gitlab.final_update_202 = 2
    answers = [await put(client, job, state="success") for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 200]
    assert answers[0].text == "202" and answers[0].headers["X-GitLab-Trace-Update-Interval"] == "1"
    assert answers[0].headers["Job-Status"] == "running"
    assert job.state is JobState.SUCCESS


async def test_graceful_cancel(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client, cancel_gracefully=True)
    gitlab.cancel(job.id)
    assert job.state is JobState.CANCELING
    assert (await put(client, job, state="running")).headers["Job-Status"] == "canceling"
    assert (await patch(client, job, 0, b"after_script\n")).headers["Job-Status"] == "canceling"
    final = await put(client, job, state="failed", failure_reason="script_failure")
    assert (final.status_code, final.headers["Job-Status"], job.state) == (200, "canceled", JobState.CANCELED)


async def test_hard_cancel(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client, cancel_gracefully=False)
    gitlab.cancel(job.id)
    assert job.state is JobState.CANCELED
    for response in (await put(client, job, state="running"), await patch(client, job, 0, b"x")):
        assert (response.status_code, response.headers["Job-Status"]) == (403, "canceled")
        assert response.json() == {"message": "403 Forbidden - Job is not processing on runner"}
    pending = gitlab.enqueue(gitlab.make_job(gitlab.git.repos["group/project"], script=["true"]))
    gitlab.cancel(pending.id)
    assert pending.state is JobState.CANCELED
    assert (await request_job(client, gitlab.add_runner().token)).status_code == 204


async def test_wait_for_job_times_out(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client)
    with pytest.raises(TimeoutError, match=f"job {job.id} is still running"):
        await gitlab.wait_for_job(job.id, timeout=0.05)


# -- trace -----------------------------------------------------------------------------------------


async def test_patch_appends_and_answers_the_range(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, _ = await start_job(gitlab, client)
    first = await patch(client, job, 0, b"line 1\n")
    assert first.status_code == 202
    assert (first.headers["Range"], first.headers["Job-Status"]) == ("0-7", "running")
    assert first.headers["X-GitLab-Trace-Update-Interval"] == "3"
    second = await patch(client, job, 7, b"line 2\n")
    assert second.headers["Range"] == "0-14"
    assert bytes(job.trace) == b"line 1\nline 2\n"


async def test_patch_out_of_range_gets_416(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client)
    await patch(client, job, 0, b"0123456789")
    ahead = await patch(client, job, 20, b"x")
    assert (ahead.status_code, ahead.headers["Range"]) == (416, "0-10")
    assert ahead.json() == {"message": "416 Range Not Satisfiable"}
    gitlab.truncate_trace(job.id, 4)
    lost = await patch(client, job, 10, b"abc")
    assert (lost.status_code, lost.headers["Range"]) == (416, "0-4")
    assert (await patch(client, job, 4, b"456789abc")).headers["Range"] == "0-13"


@pytest.mark.parametrize(
    "content_range", [None, "bytes 0-3/4", "0-", "x-y"], ids=["missing", "unit", "open", "words"]
)
async def test_patch_needs_a_bare_content_range(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient, content_range: str | None
) -> None:
    job, _ = await start_job(gitlab, client)
    headers = {"JOB-TOKEN": job.token, **({"Content-Range": content_range} if content_range else {})}
    response = await client.patch(f"/jobs/{job.id}/trace", content=b"abcd", headers=headers)
    assert response.status_code == 400 and "message" in response.json()
    assert job.trace == b""


async def test_patch_masks_the_job_token_and_enforces_the_size_limit(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    job, _ = await start_job(gitlab, client)
    await patch(client, job, 0, f"token={job.token}\n".encode())
    assert bytes(job.trace) == b"token=" + b"x" * len(job.token) + b"\n"
    gitlab.trace_size_limit = len(job.trace) + 4
    over = await patch(client, job, len(job.trace), b"12345")
    assert over.status_code == 403
    assert (job.state, job.failure_reason) == (JobState.FAILED, "trace_size_exceeded")


# -- artifacts -------------------------------------------------------------------------------------


def multipart(parts: Sequence[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


async def upload(
    client: httpx2.AsyncClient,
    job: FakeJob,
    parts: Sequence[tuple[str, str | None, bytes]],
    params: Mapping[str, str] | None = None,
) -> httpx2.Response:
    """Upload like gitlab-runner: chunked transfer encoding, no Content-Length."""
    body = multipart(parts)

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 1000):
            yield body[at : at + 1000]

    headers = {"JOB-TOKEN": job.token, "Content-Type": "multipart/form-data; boundary=b0undary"}
    query = {"artifact_format": "zip", "artifact_type": "archive", **(params or {})}
    return await client.post(f"/jobs/{job.id}/artifacts", params=query, content=chunks(), headers=headers)


async def test_upload_streams_one_file_part(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client)
    data = os.urandom(5000)
    response = await upload(client, job, [("file", "artifacts.zip", data)], {"expire_in": "1 week"})
    assert (response.status_code, response.text) == (201, "201")
    [artifact] = job.artifacts
    assert (artifact.artifact_type, artifact.artifact_format, artifact.expire_in) == (
        "archive",
        "zip",
        "1 week",
    )
    assert (artifact.filename, artifact.data) == ("artifacts.zip", data)
    recorded = gitlab.requests[-1]
    assert recorded.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in recorded.headers
    report_query = {"artifact_type": "junit", "artifact_format": "gzip"}
    report = await upload(client, job, [("file", "junit.xml.gz", b"\x1f\x8b")], report_query)
    assert report.status_code == 201 and len(job.artifacts) == 2


async def test_upload_refusals(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    job, _ = await start_job(gitlab, client)
    assert (await upload(client, job, [("file", "a.zip", b"one")])).status_code == 201
    assert (await upload(client, job, [("file", "a.zip", b"one")])).status_code == 201  # same bytes: fine
    other = await upload(client, job, [("file", "a.zip", b"two")])
    assert (other.status_code, other.json()) == (
        400,
        {"message": "another artifact of the same type already exists"},
    )
    assert (await upload(client, job, [], {"artifact_type": "junit"})).status_code == 400
    two = [("file", "a.gz", b"1"), ("file", "b.gz", b"2")]
    assert (await upload(client, job, two, {"artifact_type": "junit"})).status_code == 400
    stray = [("file", "a.gz", b"1"), ("metadata", "m.gz", b"2")]
    assert (await upload(client, job, stray, {"artifact_type": "junit"})).status_code == 400
    assert (await upload(client, job, [("file", "x", b"1")], {"artifact_type": "bogus"})).status_code == 400
    not_multipart = await client.post(
        f"/jobs/{job.id}/artifacts", content=b"zip", headers={"JOB-TOKEN": job.token}
    )
    assert not_multipart.status_code == 400
    await put(client, job, state="success")
    late = await upload(client, job, [("file", "t.gz", b"1")], {"artifact_type": "trace"})
    assert (late.status_code, late.headers["Job-Status"]) == (403, "success")
    assert [a.data for a in job.artifacts] == [b"one"]


async def test_upload_past_the_size_limit_gets_413(tmp_path: Path) -> None:
    async with (
        FakeCoordinator(tmp_path, artifact_size_limit=4096) as gitlab,
        httpx2.AsyncClient(base_url=f"{gitlab.url}/api/v4", timeout=10.0) as client,
    ):
        job, _ = await start_job(gitlab, client)
        response = await upload(client, job, [("file", "big.zip", bytes(4097))])
        assert (response.status_code, response.json()) == (
            413,
            {"message": "file size has reached maximum size limit"},
        )
        assert job.artifacts == []
        multipart_files = await client.post(
            f"/jobs/{job.id}/artifacts",
            files={"file": ("ok.zip", bytes(4096))},
            headers={"JOB-TOKEN": job.token},
        )
        assert multipart_files.status_code == 201


async def test_download_serves_a_running_jobs_dependencies(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    producer, _ = await start_job(gitlab, client)
    await upload(client, producer, [("file", "artifacts.zip", b"PK-archive")])
    await put(client, producer, state="success")
    consumer, _ = await start_job(gitlab, client)
    got = await client.get(f"/jobs/{producer.id}/artifacts", headers={"JOB-TOKEN": consumer.token})
    assert (got.status_code, got.content) == (200, b"PK-archive")
    assert (
        await client.get(f"/jobs/{consumer.id}/artifacts", headers={"JOB-TOKEN": consumer.token})
    ).status_code == 404
    assert (
        await client.get("/jobs/424242/artifacts", headers={"JOB-TOKEN": consumer.token})
    ).status_code == 403
    stale = await client.get(f"/jobs/{producer.id}/artifacts", headers={"JOB-TOKEN": producer.token})
    assert stale.status_code == 401


async def test_download_redirects_to_object_storage(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient
) -> None:
    consumer, _ = await start_job(gitlab, client)
    gitlab.set_artifacts(77, b"PK-stored", "build.zip", redirect=True)
    headers = {"JOB-TOKEN": consumer.token}
    proxied = await client.get("/jobs/77/artifacts", headers=headers)
    assert (proxied.status_code, proxied.content) == (200, b"PK-stored")
    redirect = await client.get("/jobs/77/artifacts", params={"direct_download": "true"}, headers=headers)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"{gitlab.url}/object-storage/")
    leaked = await client.get(location, headers=headers)
    assert leaked.status_code == 403 and b"JOB-TOKEN" in leaked.content
    clean = await client.get(location)
    assert (clean.status_code, clean.content) == (200, b"PK-stored")
    forged = await client.get(location.replace("Signature=", "Signature=0"))
    assert forged.status_code == 403


# -- faults ------------------------------------------------------------------------------------------


async def test_fail_next_answers_the_fault_first(gitlab: FakeCoordinator, client: httpx2.AsyncClient) -> None:
    runner = gitlab.add_runner()
    gitlab.fail_next("request", 429, count=2, headers={"Retry-After": "1"})
    answers = [await request_job(client, runner.token) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 204]
    assert answers[0].json() == {"message": "429 Too Many Requests"}
    assert answers[0].headers["Retry-After"] == "1"
    assert [r.status for r in gitlab.requests[-3:]] == [429, 429, 204]


@pytest.mark.parametrize("endpoint", ["update", "trace", "artifacts_upload"])
async def test_fail_next_on_job_endpoints(
    gitlab: FakeCoordinator, client: httpx2.AsyncClient, endpoint: str
) -> None:
    job, _ = await start_job(gitlab, client)
    gitlab.fail_next(endpoint, 502)
    calls = {
        "update": lambda: put(client, job, state="running"),
        "trace": lambda: patch(client, job, 0, b"abc"),
        "artifacts_upload": lambda: upload(client, job, [("file", "a.zip", os.urandom(100_000))]),
    }
    assert (await calls[endpoint]()).status_code == 502
    assert (await calls[endpoint]()).status_code in (200, 201, 202)
    assert bytes(job.trace) in (b"", b"abc") and len(job.artifacts) <= 1


def test_fail_next_rejects_unknown_endpoints(tmp_path: Path) -> None:
    gitlab = FakeCoordinator(tmp_path)
    with pytest.raises(ValueError, match="unknown endpoint 'jobs'"):
        gitlab.fail_next("jobs")
    with pytest.raises(ValueError, match="error status"):
        gitlab.fail_next("request", 200)


async def test_unknown_routes_answer_json(client: httpx2.AsyncClient) -> None:
    response = await client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"message": "404 Not Found"})
