"""extends, !reference and include: local merging, as GitLab merges them."""

from __future__ import annotations

import pytest

from skyrunner.errors import PipelineFileError
from skyrunner.pipeline.model import Variable

from .conftest import load, names


def test_extends_multi_level_merges_hashes_and_replaces_arrays() -> None:
    pipeline = load("""
        .base:
          image: alpine
          variables: {A: base, B: base}
          script: [base]
          artifacts: {paths: [a, b], expire_in: 1 day}
        .middle:
          extends: .base
          variables: {B: middle, C: middle}
          artifacts: {paths: [c]}
        job:
          extends: .middle
          variables: {C: job}
          script: [own]
    """)
    job = pipeline.job("job")
    assert job.variables == (Variable("A", "base"), Variable("B", "middle"), Variable("C", "job"))
    assert job.script == ("own",)
    assert job.image is not None and job.image.name == "alpine"
    assert job.artifacts is not None
    assert job.artifacts.paths == ("c",)  # arrays are replaced, not merged
    assert job.artifacts.expire_in == "1 day"  # hash keys merged


def test_extends_list_later_bases_win() -> None:
    pipeline = load("""
        .a: {variables: {X: a, Y: a}, script: [a]}
        .b: {variables: {X: b}}
        job: {extends: [.a, .b], stage: test}
    """)
    job = pipeline.job("job")
    assert job.variables == (Variable("X", "b"), Variable("Y", "a"))
    assert job.script == ("a",)


def test_reference_multi_level_and_nested_in_scripts() -> None:
    pipeline = load("""
        .setup:
          script: [echo one, echo two]
        .deep:
          nested:
            more: [echo deep]
        .chain:
          script: [!reference [.setup, script], echo three]
        job:
          before_script: !reference [.deep, nested, more]
          script:
            - !reference [.chain, script]
            - echo four
          variables: !reference [.vars, variables]
        .vars:
          variables: {V: "1"}
    """)
    job = pipeline.job("job")
    assert job.script == ("echo one", "echo two", "echo three", "echo four")
    assert job.before_script == ("echo deep",)
    assert job.variables == (Variable("V", "1"),)


def test_reference_sees_the_extended_job() -> None:
    pipeline = load("""
        .base: {script: [from-base]}
        .child: {extends: .base}
        job: {script: !reference [.child, script]}
    """)
    assert pipeline.job("job").script == ("from-base",)


def test_anchors_aliases_and_merge_keys() -> None:
    pipeline = load("""
        .defaults: &defaults
          image: alpine
          script: [echo anchored]
        job1:
          <<: *defaults
          stage: build
        job2: *defaults
    """)
    assert names(pipeline) == ["job1", "job2"]
    assert pipeline.job("job1").stage == "build"
    assert pipeline.job("job2").script == ("echo anchored",)


INCLUDE_FORMS = [
    ("include: ci/a.yml", ["from_a", "main_job"]),
    ("include: [ci/a.yml, /ci/b.yaml]", ["from_a", "from_b", "main_job"]),
    ("include: {local: ci/a.yml}", ["from_a", "main_job"]),
    ("include: [{local: /ci/b.yaml}, ci/a.yml]", ["from_b", "from_a", "main_job"]),
    ("include: 'ci/*.yml'", ["from_a", "main_job"]),
    ("include: 'ci/**.y*'", ["from_a", "from_b", "main_job"]),
]


@pytest.mark.parametrize(("include", "expected"), INCLUDE_FORMS, ids=[f[0] for f in INCLUDE_FORMS])
def test_include_local_forms(include: str, expected: list[str]) -> None:
    files = {"ci/a.yml": "from_a: {script: [a]}\n", "ci/b.yaml": "from_b: {script: [b]}\n"}
    pipeline = load(include + "\nmain_job: {script: [m]}\n", files)
    assert names(pipeline) == expected


def test_include_nested_and_main_file_wins() -> None:
    files = {
        "ci/a.yml": """
            include: ci/b.yml
            variables: {FROM: a, A: "1"}
            shared: {script: [from-a], stage: build}
        """,
        "ci/b.yml": """
            variables: {FROM: b, B: "1"}
            .hidden: {script: [hidden-b]}
        """,
    }
    pipeline = load(
        """
        include: ci/a.yml
        variables: {FROM: main}
        shared: {stage: test}
        uses: {extends: .hidden}
    """,
        files,
    )
    assert {v.key: v.value for v in pipeline.variables} == {"FROM": "main", "A": "1", "B": "1"}
    assert pipeline.job("shared").script == ("from-a",)
    assert pipeline.job("shared").stage == "test"
    assert pipeline.job("uses").script == ("hidden-b",)


def test_include_cycle_is_read_once() -> None:
    files = {
        "ci/a.yml": "include: ci/b.yml\na: {script: [a]}\n",
        "ci/b.yml": "include: ci/a.yml\nb: {script: [b]}\n",
    }
    assert sorted(names(load("include: ci/a.yml\n", files))) == ["a", "b"]


def test_include_rules() -> None:
    files = {"ci/a.yml": "a: {script: [a]}\n", "ci/b.yml": "b: {script: [b]}\n"}
    pipeline = load(
        """
        include:
          - local: ci/a.yml
            rules: [{if: $CI_COMMIT_BRANCH == "main"}]
          - local: ci/b.yml
            rules: [{exists: [nothing-here]}]
        main: {script: [m]}
    """,
        files,
    )
    assert names(pipeline) == ["a", "main"]


def test_include_path_with_variables() -> None:
    files = {"ci/main.yml": "a: {script: [a]}\n"}
    assert names(load("include: ci/$CI_COMMIT_BRANCH.yml\n", files)) == ["a"]


def test_extends_error_cases() -> None:
    with pytest.raises(PipelineFileError, match=r'job "b": extends: circular dependency: a -> b -> a'):
        load("a: {extends: b, script: [x]}\nb: {extends: a, script: [y]}\n")
    with pytest.raises(
        PipelineFileError, match=r'\.gitlab-ci\.yml:1: job "a": extends: unknown job "\.nope"'
    ):
        load("a: {extends: .nope, script: [x]}\n")
