"""The job payload has GitLab's JobResponse shape (protocol fixtures) and GitLab's values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from skyrunner.pipeline import Pipeline, RefType, build_job_payload
from skyrunner.pipeline._entries import REPORT_TYPES
from skyrunner.pipeline.payload import FAILURE_REASONS, REPORT_FILES

from .conftest import SHA, checkout_for, load

# shared/ sits beside the checkout (here and in CI's fresh clone)
FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "protocol" / "fixtures"

PIPELINE = """
variables:
  GLOBAL: g
  LITERAL_DOLLARS: {value: "keep $THIS as-is", expand: false}
rspec:
  image: {name: "ruby:3.3", pull_policy: if-not-present}
  services:
    - name: postgres:16
      alias: db
      variables: {POSTGRES_PASSWORD: example}
  before_script: [bundle install]
  script: [bundle exec rspec]
  after_script: [echo done]
  variables: {JOB: j, GLOBAL: overridden}
  timeout: 1h
  artifacts:
    name: coverage
    paths: [coverage/]
    exclude: ["coverage/**/*.tmp"]
    expire_in: 1 week
    reports: {junit: rspec.xml}
  cache:
    key: gems
    paths: [vendor/bundle]
    fallback_keys: [gems-default]
  hooks: {pre_get_sources_script: ["echo 'hello pre_get_sources_script'"]}
  rules:
    - if: $CI_COMMIT_BRANCH
      variables: {FROM_RULE: r}
"""


def _fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"protocol fixture {name} not available")
    return json.loads(path.read_text())


def _payload(pipeline: Pipeline, name: str, **kwargs: Any) -> dict[str, Any]:
    checkout = kwargs.pop("checkout", checkout_for())
    return build_job_payload(
        pipeline,
        pipeline.job(name),
        job_id=1001,
        job_token="glcbt-64_SECRET",
        server_url="https://gitlab.example.com",
        repo_url="https://gitlab-ci-token:glcbt-64_SECRET@gitlab.example.com/my-group/my-project.git",
        checkout=checkout,
        dependencies=kwargs.pop("dependencies", [(999, "build", "artifacts.zip"), (998, "lint", "")]),
        pipeline_id=500,
        project_id=42,
    )


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_top_level_keys_and_nested_shapes_match_the_fixture() -> None:
    fixture = _fixture("job_response.full.reconstructed.json")
    payload = _payload(load(PIPELINE, variables={"CLI": "c"}), "rspec")
    ignored = {"inputs", "credentials"}
    assert set(payload) - {"credentials"} == set(fixture) - ignored
    for key in ("git_info", "steps", "image", "services", "cache"):
        assert _shape(payload[key]) == _shape(fixture[key]), key
    assert set(payload["job_info"]) <= set(fixture["job_info"])
    assert set(payload["runner_info"]) <= set(fixture["runner_info"])
    assert payload["artifacts"] == [
        {
            "name": "coverage",
            "untracked": False,
            "paths": ["coverage/"],
            "exclude": ["coverage/**/*.tmp"],
            "when": "on_success",
            "expire_in": "1 week",
            "artifact_type": "archive",
            "artifact_format": "zip",
        },
        {
            "name": "junit.xml",
            "paths": ["rspec.xml"],
            "when": "always",
            "expire_in": "1 week",
            "artifact_type": "junit",
            "artifact_format": "gzip",
        },
    ]
    assert payload["features"] == fixture["features"]
    assert payload["dependencies"][0] == {
        "id": 999,
        "name": "build",
        "token": "glcbt-64_SECRET",
        "artifacts_file": {"filename": "artifacts.zip", "size": 0},
    }
    assert payload["dependencies"][1] == {"id": 998, "name": "lint", "token": "glcbt-64_SECRET"}
    assert payload["hooks"] == fixture["hooks"]


def test_values_steps_git_info_cache() -> None:
    payload = _payload(load(PIPELINE), "rspec")
    assert payload["steps"] == [
        {
            "name": "script",
            "script": ["bundle install", "bundle exec rspec"],
            "timeout": 3600,
            "when": "on_success",
            "allow_failure": False,
        },
        {
            "name": "after_script",
            "script": ["echo done"],
            "timeout": 3600,
            "when": "always",
            "allow_failure": True,
        },
    ]
    assert payload["runner_info"]["timeout"] == 3600
    assert payload["git_info"] == {
        "repo_url": "https://gitlab-ci-token:glcbt-64_SECRET@gitlab.example.com/my-group/my-project.git",
        "ref": "main",
        "sha": SHA,
        "before_sha": "0123456789abcdef0123456789abcdef01234567",
        "ref_type": "branch",
        "refspecs": ["+refs/pipelines/500:refs/pipelines/500", "+refs/heads/main:refs/remotes/origin/main"],
        "depth": 20,
        "repo_object_format": "sha1",
        "protected": True,
    }
    assert payload["cache"] == [
        {
            "key": "gems-protected",
            "untracked": False,
            "paths": ["vendor/bundle"],
            "policy": "pull-push",
            "when": "on_success",
            "fallback_keys": ["gems-default-protected"],
        }
    ]
    assert payload["image"] == {
        "name": "ruby:3.3",
        "entrypoint": None,
        "ports": [],
        "executor_opts": {},
        "pull_policy": ["if-not-present"],
    }
    assert payload["services"][0]["variables"] == [{"key": "POSTGRES_PASSWORD", "value": "example"}]


def test_variables_order_flags_and_precedence() -> None:
    payload = _payload(load(PIPELINE, variables={"GLOBAL": "cli"}), "rspec")
    variables = payload["variables"]
    keys = [v["key"] for v in variables]
    token = next(v for v in variables if v["key"] == "CI_JOB_TOKEN")
    assert token == {"key": "CI_JOB_TOKEN", "value": "glcbt-64_SECRET", "public": False, "masked": True}
    raw = next(v for v in variables if v["key"] == "LITERAL_DOLLARS")
    assert raw == {
        "key": "LITERAL_DOLLARS",
        "value": "keep $THIS as-is",
        "public": True,
        "masked": False,
        "raw": True,
    }
    assert all("file" not in v for v in variables)
    assert all("raw" not in v for v in variables if v["key"] != "LITERAL_DOLLARS")
    # predefined < global < job < rules < --variable: later entries win
    globals_ = [v["value"] for v in variables if v["key"] == "GLOBAL"]
    assert globals_ == ["g", "overridden", "cli"]
    assert keys.index("CI_COMMIT_SHA") < keys.index("JOB") < keys.index("FROM_RULE")
    final = {v["key"]: v["value"] for v in variables}
    assert final["CI_JOB_URL"] == "https://gitlab.example.com/my-group/my-project/-/jobs/1001"
    assert final["CI_PIPELINE_ID"] == "500" and final["CI_PROJECT_ID"] == "42"
    assert final["CI_SERVER_HOST"] == "gitlab.example.com" and final["CI_SERVER_PORT"] == "443"
    assert final["CI_API_V4_URL"] == "https://gitlab.example.com/api/v4"
    assert final["CI_COMMIT_TITLE"] == "Add things" and final["CI_COMMIT_DESCRIPTION"] == "with a body"
    assert final["CI_PROJECT_NAMESPACE"] == "my-group" and final["CI_PROJECT_NAME"] == "my-project"
    assert final["CI_PROJECT_PATH_SLUG"] == "my-group-my-project"
    assert final["CI_COMMIT_BRANCH"] == "main" and "CI_COMMIT_TAG" not in final
    assert final["CI_PIPELINE_SOURCE"] == "push" and final["CI"] == "true" and final["GITLAB_CI"] == "true"


def test_parallel_matrix_variables_and_tag_refspecs() -> None:
    pipeline = load(
        "job: {script: [x], parallel: {matrix: [{OS: [linux, mac]}]}, variables: {GIT_DEPTH: '0'}}"
    )
    checkout = checkout_for(ref="v1.0", ref_type=RefType.TAG)
    payload = _payload(pipeline, "job: [mac]", checkout=checkout, dependencies=[])
    final = {v["key"]: v["value"] for v in payload["variables"]}
    assert (final["CI_NODE_INDEX"], final["CI_NODE_TOTAL"], final["OS"]) == ("2", "2", "mac")
    assert final["CI_COMMIT_TAG"] == "v1.0" and "CI_COMMIT_BRANCH" not in final
    assert final["CI_COMMIT_REF_PROTECTED"] == "false"
    assert payload["git_info"]["depth"] == 0
    assert payload["git_info"]["refspecs"] == [
        "+refs/pipelines/500:refs/pipelines/500",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    ]
    assert payload["image"] is None and payload["services"] == [] and payload["artifacts"] == []
    assert payload["steps"][-1]["name"] == "script" and payload["dependencies"] == []


def test_report_types_and_failure_reasons() -> None:
    assert set(REPORT_FILES) == (REPORT_TYPES - {"coverage_report"}) | {"cobertura", "jacoco"}
    assert (
        list(FAILURE_REASONS)
        == _fixture("job_response.full.reconstructed.json")["features"]["failure_reasons"]
    )


PARTIALS = [
    "image-basic.yml",
    "image-executor_opts-platform.yml",
    "image-executor_opts-kubernetes-user_as_int.yml",
    "service-basic.yml",
    "service-variables.yml",
    "service-executor_opts-user.yml",
]


@pytest.mark.parametrize("name", PARTIALS)
def test_gitlab_spec_partials(name: str) -> None:
    case = _fixture("job_response_partials.gitlab-rails-spec-yamls.json")[name]
    pipeline = load(json.dumps(case["gitlab_ci"]))
    payload = _payload(pipeline, "rspec")
    for key, expected in case["request_response"].items():
        assert payload[key] == expected, key


def test_masked_token_is_not_in_any_error() -> None:
    pipeline = load("job: {script: [x]}")
    payload = _payload(pipeline, "job")
    assert "glcbt-64_SECRET" not in repr(pipeline)
    assert payload["token"] == "glcbt-64_SECRET"
