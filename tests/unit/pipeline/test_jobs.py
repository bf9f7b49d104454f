"""Job definitions: defaults and inherit, parallel and matrix naming, needs, the DAG, selection."""

from __future__ import annotations

import hashlib

import pytest

from skyrunner.pipeline import CachePolicy, Need, SaveWhen, When
from skyrunner.pipeline.model import Report, Retry, Variable

from .conftest import checkout_for, load, names


def test_stages_default_and_edges() -> None:
    assert load("job: {script: [x]}").stages == (".pre", "build", "test", "deploy", ".post")
    assert load("stages: [.post, one, two]\njob: {script: [x], stage: one}").stages == (
        ".pre",
        "one",
        "two",
        ".post",
    )
    assert load("job: {script: [x]}").job("job").stage == "test"


def test_default_and_legacy_globals_with_inherit() -> None:
    pipeline = load("""
        image: legacy-image
        before_script: [legacy-before]
        default:
          before_script: [default-before]
          after_script: [default-after]
          retry: 2
          timeout: 30m
          interruptible: true
          tags: [docker]
        variables: {G1: "1", G2: "2"}
        all: {script: [x]}
        none:
          script: [x]
          inherit: {default: false, variables: false}
        some:
          script: [x]
          before_script: [own]
          inherit: {default: [image, retry], variables: [G2]}
    """)
    full = pipeline.job("all")
    assert full.image is not None and full.image.name == "legacy-image"
    assert full.before_script == ("default-before",)
    assert full.after_script == ("default-after",)
    assert full.retry == Retry(2)
    assert full.timeout == 1800
    assert full.interruptible is True
    assert full.tags == ("docker",)
    assert pipeline.global_variables(full) == (Variable("G1", "1"), Variable("G2", "2"))
    none = pipeline.job("none")
    assert none.image is None and none.before_script == () and none.retry == Retry()
    assert pipeline.global_variables(none) == ()
    some = pipeline.job("some")
    assert some.image is not None and some.before_script == ("own",) and some.after_script == ()
    assert pipeline.global_variables(some) == (Variable("G2", "2"),)


def test_parallel_count_names() -> None:
    pipeline = load("job: {script: [x], parallel: 3}")
    assert names(pipeline) == ["job 1/3", "job 2/3", "job 3/3"]
    origin = pipeline.jobs[1].parallel
    assert origin is not None and (origin.base, origin.index, origin.total) == ("job", 2, 3)


def test_parallel_matrix_names_and_variables() -> None:
    pipeline = load("""
        deploy:
          script: [x]
          parallel:
            matrix:
              - PROVIDER: aws
                STACK: [monitoring, app1]
              - PROVIDER: [gcp, 1]
                STACK: data
    """)
    assert names(pipeline) == [
        "deploy: [aws, monitoring]",
        "deploy: [aws, app1]",
        "deploy: [gcp, data]",
        "deploy: [1, data]",
    ]
    origin = pipeline.jobs[1].parallel
    assert origin is not None
    assert origin.matrix == (Variable("PROVIDER", "aws"), Variable("STACK", "app1"))
    assert (origin.index, origin.total) == (2, 4)


def test_needs_expand_parallel_jobs_and_matrix_selection() -> None:
    pipeline = load("""
        build:
          stage: build
          script: [x]
          parallel: {matrix: [{OS: [linux, mac]}]}
        lint: {stage: build, script: [x], parallel: 2}
        test:
          script: [x]
          needs:
            - lint
            - job: build
              parallel: {matrix: [{OS: mac}]}
              artifacts: false
        package: {stage: deploy, script: [x], needs: [], dependencies: []}
    """)
    test = pipeline.job("test")
    assert test.needs == (Need("lint 1/2"), Need("lint 2/2"), Need("build: [mac]", artifacts=False))
    assert [j.name for j in pipeline.predecessors(test)] == ["build: [mac]", "lint 1/2", "lint 2/2"]
    assert [j.name for j in pipeline.artifact_sources(test)] == ["lint 1/2", "lint 2/2"]
    package = pipeline.job("package")
    assert package.needs == () and pipeline.predecessors(package) == ()
    assert pipeline.artifact_sources(package) == ()


def test_stage_predecessors_and_dependencies() -> None:
    pipeline = load("""
        a: {stage: build, script: [x]}
        b: {stage: build, script: [x]}
        c: {stage: test, script: [x], dependencies: [a]}
        d: {stage: deploy, script: [x]}
    """)
    c, d = pipeline.job("c"), pipeline.job("d")
    assert [j.name for j in pipeline.predecessors(c)] == ["a", "b"]
    assert [j.name for j in pipeline.artifact_sources(c)] == ["a"]
    assert [j.name for j in pipeline.predecessors(d)] == ["a", "b", "c"]


def test_select_takes_needs_transitively() -> None:
    pipeline = load("""
        a: {stage: build, script: [x]}
        b: {stage: build, script: [x], needs: [a]}
        c: {stage: test, script: [x], needs: [b]}
        d: {stage: test, script: [x]}
    """)
    assert names(pipeline.select(["c"])) == ["a", "b", "c"]
    assert names(pipeline.select(["d"])) == ["d"]
    with pytest.raises(KeyError):
        pipeline.select(["nope"])


def test_optional_need_dropped_when_rules_remove_the_job() -> None:
    pipeline = load("""
        a: {stage: build, script: [x], rules: [{if: $NOPE}]}
        b: {script: [x], needs: [{job: a, optional: true}]}
    """)
    assert pipeline.job("b").needs == ()


def test_rules_needs_replace_job_needs() -> None:
    pipeline = load("""
        a: {stage: build, script: [x]}
        b: {stage: build, script: [x]}
        c: {script: [x], needs: [a], rules: [{needs: [b]}]}
    """)
    assert pipeline.job("c").needs == (Need("b"),)


def test_when_allow_failure_exit_codes_retry_timeout() -> None:
    pipeline = load("""
        manual: {script: [x], when: manual}
        manual_strict: {script: [x], when: manual, allow_failure: false}
        codes: {script: [x], allow_failure: {exit_codes: [137, 255]}}
        one_code: {script: [x], allow_failure: {exit_codes: 3}}
        delayed: {script: [x], when: delayed, start_in: 30 seconds}
        retried: {script: [x], retry: {max: 2, when: [script_failure], exit_codes: 1}}
        timed: {script: [x], timeout: 1h 30m}
        always: {script: [x], when: always, allow_failure: true}
    """)
    assert pipeline.job("manual").when is When.MANUAL and pipeline.job("manual").allow_failure
    assert not pipeline.job("manual_strict").allow_failure
    codes = pipeline.job("codes")
    assert (codes.allow_failure, codes.exit_codes) == (False, (137, 255))
    assert pipeline.job("one_code").exit_codes == (3,)
    assert pipeline.job("delayed").start_in == "30 seconds"
    assert pipeline.job("retried").retry == Retry(2, ("script_failure",), (1,))
    assert pipeline.job("timed").timeout == 5400
    assert pipeline.job("always").when is When.ALWAYS


def test_variables_forms() -> None:
    pipeline = load("""
        variables:
          PLAIN: text
          NUMBER: 42
          DESCRIBED: {value: "v", description: "shown in the UI"}
          RAW: {value: "$KEEP", expand: false}
          OPTIONS: {value: a, options: [a, b]}
        job: {script: [x]}
    """)
    assert pipeline.variables == (
        Variable("PLAIN", "text"),
        Variable("NUMBER", "42"),
        Variable("DESCRIBED", "v"),
        Variable("RAW", "$KEEP", raw=True),
        Variable("OPTIONS", "a"),
    )


def test_image_services_artifacts_cache_hooks() -> None:
    files = {"Gemfile.lock": "", "yarn.lock": ""}
    pipeline = load(
        """
        job:
          script: [x]
          image: {name: "ruby:3.3", entrypoint: [""], pull_policy: if-not-present, docker: {platform: amd64}}
          services:
            - postgres:16
            - name: redis:7
              alias: cache
              command: [redis-server, --save, ""]
              variables: {X: "1"}
          artifacts:
            name: out
            paths: [out/]
            exclude: [out/*.tmp]
            when: always
            expire_in: 1 week
            reports:
              junit: [a.xml, b.xml]
              coverage_report: {coverage_format: cobertura, path: cov.xml}
              dotenv: build.env
          cache:
            - key: {files: [Gemfile.lock, "*.lock"], prefix: gems}
              paths: [vendor/]
              policy: pull
              fallback_keys: [gems-main]
            - key: $CI_COMMIT_REF_SLUG
              untracked: true
              when: on_failure
            - paths: [x]
          hooks: {pre_get_sources_script: [echo pre]}
    """,
        files,
        checkout=checkout_for({".gitlab-ci.yml": "", **files}),
    )
    job = pipeline.job("job")
    assert job.image is not None
    assert (job.image.name, job.image.entrypoint, job.image.pull_policy) == (
        "ruby:3.3",
        ("",),
        ("if-not-present",),
    )
    assert job.image.executor_opts == {"docker": {"platform": "amd64"}}
    assert [s.image.name for s in job.services] == ["postgres:16", "redis:7"]
    assert job.services[1].alias == "cache" and job.services[1].command == ("redis-server", "--save", "")
    assert job.artifacts is not None
    assert job.artifacts.when is SaveWhen.ALWAYS and job.artifacts.exclude == ("out/*.tmp",)
    assert job.artifacts.reports == (
        Report("junit", ("a.xml", "b.xml")),
        Report("cobertura", ("cov.xml",)),
        Report("dotenv", ("build.env",)),
    )
    gems, ref, plain = job.caches
    digest = hashlib.sha1(b"blob-Gemfile.lock-blob-yarn.lock").hexdigest()
    assert gems.key == f"gems-{digest}"
    assert gems.policy is CachePolicy.PULL and gems.fallback_keys == ("gems-main",)
    assert (ref.key, ref.untracked, ref.when) == ("$CI_COMMIT_REF_SLUG", True, SaveWhen.ON_FAILURE)
    assert plain.key == "default"
    assert job.pre_get_sources_script == ("echo pre",)


def test_cache_key_files_without_matches_is_default() -> None:
    pipeline = load("job: {script: [x], cache: {key: {files: [missing.lock]}, paths: [a]}}")
    assert pipeline.job("job").caches[0].key == "default"


def test_ignored_keywords_are_accepted() -> None:
    pipeline = load("""
        job:
          script: [x]
          environment: {name: review/$CI_COMMIT_REF_SLUG}
          coverage: '/Total: (\\d+)%/'
          resource_group: prod
          id_tokens: {TOKEN: {aud: x}}
    """)
    assert pipeline.job("job").environment == "review/$CI_COMMIT_REF_SLUG"
