"""The job's scripts: stage bodies and phase lists that the sequencer runs.

Pure: no I/O. :func:`render_job_script` turns a job into the files of its run directory (see
``sequencer.sh`` for the protocol): one body per stage and one stage list per phase. Both
executors run these same files with the same sequencer, so a job's trace after
``prepare_executor`` is produced by the scripts themselves (section markers, headings, ``$ cmd``
echo lines), which is what lets the kubernetes executor regenerate a trace from a pod's log.

Phases and where they run:

====================  ========================================  ==========================
phase                 stages                                    kubernetes container
====================  ========================================  ==========================
``prepare``           prepare_script, get_sources,              init container ``prepare``
                      restore_cache, download_artifacts
``build``             step_script (and other steps), after_script  ``build`` (job image)
``finish``            archive_cache[_on_failure],               sidecar ``helper``
                      upload_artifacts_on_success/_on_failure
====================  ========================================  ==========================
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

from skyrunner.job.spec import JobSpec, Stage

__all__ = [
    "SEQUENCER_FILE",
    "JobScript",
    "Phase",
    "ScriptOptions",
    "StagePlan",
    "parse_stage_results",
    "quote",
    "render_job_script",
    "sequencer_source",
]

SEQUENCER_FILE: Final = "sequencer.sh"


class Phase(enum.StrEnum):
    PREPARE = "prepare"
    BUILD = "build"
    FINISH = "finish"


class StageKind(enum.StrEnum):
    STEP = "step"
    AFTER = "after"


@dataclass(frozen=True, slots=True)
class StagePlan:
    name: str
    when: str
    kind: StageKind
    body: str


@dataclass(frozen=True, slots=True)
class ScriptOptions:
    """What the scripts need besides the job: runner config hooks and rendering switches."""

    pre_get_sources_script: str = ""
    post_get_sources_script: str = ""
    pre_build_script: str = ""
    post_build_script: str = ""
    debug_trace: bool = False
    skip_git: bool = False  # GIT_STRATEGY=none: no helper process needed to fetch nothing


@dataclass(frozen=True, slots=True)
class JobScript:
    """The run directory's content: phase lists and stage bodies."""

    phases: dict[Phase, tuple[StagePlan, ...]]

    def files(self) -> dict[str, str]:
        """Relative path -> content of every file the sequencer reads, the sequencer included."""
        out = {SEQUENCER_FILE: sequencer_source()}
        for phase, stages in self.phases.items():
            out[f"phases/{phase}"] = "".join(f"{s.name} {s.when} {s.kind}\n" for s in stages)
            out.update({f"stages/{s.name}.sh": s.body for s in stages})
        return out

    def stages(self, phase: Phase) -> tuple[str, ...]:
        return tuple(s.name for s in self.phases[phase])


@functools.cache
def sequencer_source() -> str:
    """The POSIX sh sequencer shipped with the package (read once: every job writes it)."""
    return resources.files("skyrunner.job").joinpath(SEQUENCER_FILE).read_text()


def quote(text: str) -> str:
    """Quote ``text`` for POSIX sh."""
    return "'" + text.replace("'", "'\\''") + "'"


_HEADINGS: Final = {
    Stage.PREPARE_SCRIPT: "Preparing environment",
    Stage.GET_SOURCES: "Getting source from Git repository",
    Stage.RESTORE_CACHE: "Restoring cache",
    Stage.DOWNLOAD_ARTIFACTS: "Downloading artifacts",
    Stage.AFTER_SCRIPT: "Running after_script",
    Stage.ARCHIVE_CACHE: "Saving cache for successful job",
    Stage.ARCHIVE_CACHE_ON_FAILURE: "Saving cache for failed job",
    Stage.UPLOAD_ARTIFACTS_ON_SUCCESS: "Uploading artifacts for successful job",
    Stage.UPLOAD_ARTIFACTS_ON_FAILURE: "Uploading artifacts for failed job",
}

_PRELUDE: Final = """\
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi
set +o noclobber 2>/dev/null
set -e
"""
_LOAD_GITLAB_ENV: Final = 'if [ -f "$GITLAB_ENV" ]; then set -a; . "$GITLAB_ENV"; set +a; fi\n'


def _heading(text: str) -> str:
    return f"printf '\\033[0K\\033[36;1m%s\\033[0;m\\033[0;m\\n' {quote(text)}\n"


def _green(text: str) -> str:
    return f"printf '\\033[32;1m%s\\033[0;m\\n' {quote(text)}\n"


def _commands(lines: Sequence[str], *, sections: bool, first_index: int = 0) -> str:
    """Echo each command in green (``$ cmd``), then run it; multi-line ones get a collapsed section."""
    out = []
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        if "\n" in line.strip() and sections:
            name = f"section_script_step_{first_index + offset}"
            out.append(
                f"printf 'section_start:%s:{name}[hide_duration=true,collapsed=true]\\r\\033[0K' \"$(date +%s)\"\n"
            )
            out.append(_green(f"$ {line.rstrip()}"))
            out.append(f"{line.rstrip()}\n")
            out.append(f"printf 'section_end:%s:{name}\\r\\033[0K' \"$(date +%s)\"\n")
        else:
            out.append(_green(f"$ {line.rstrip()}"))
            out.append(f"{line.rstrip()}\n")
    return "".join(out)


def _helper(command: str) -> str:
    """Run a helper step: through the runner's fork server when it offers one (shell executor)."""
    args = f'{command} --plan "$SKYRUNNER_PLAN"'
    return (
        'if [ -n "${SKYRUNNER_HELPER_SOCKET:-}" ]; then\n'
        f'  "$SKYRUNNER_PYTHON" -I -S "$SKYRUNNER_HELPER_CLIENT" {args}\n'
        "else\n"
        f'  "${{SKYRUNNER_PYTHON:-python3}}" -m skyrunner.helper {args}\n'
        "fi\n"
    )


def _body(heading: str, *parts: str) -> str:
    return "# rendered by skyrunner\n" + _heading(heading) + "".join(parts)


def _prepare_stages(spec: JobSpec, opts: ScriptOptions) -> list[StagePlan]:
    sections = spec.features.trace_sections
    pre = [opts.pre_get_sources_script] if opts.pre_get_sources_script else []
    post = [opts.post_get_sources_script] if opts.post_get_sources_script else []
    pre += spec.hook("pre_get_sources_script")
    post += spec.hook("post_get_sources_script")
    sources = [_PRELUDE]
    if pre:
        sources += ['mkdir -p "$CI_BUILDS_DIR" && cd "$CI_BUILDS_DIR"\n', _commands(pre, sections=sections)]
    if opts.skip_git:
        sources += [_green("Skipping Git repository setup"), 'mkdir -p "$CI_PROJECT_DIR"\n']
    else:
        sources.append(_helper("sources"))
    if post:
        sources += ['cd "$CI_PROJECT_DIR"\n', _commands(post, sections=sections)]
    stages = [
        StagePlan(
            Stage.PREPARE_SCRIPT,
            "on_success",
            StageKind.STEP,
            _body(
                _HEADINGS[Stage.PREPARE_SCRIPT], 'echo "Running on $(hostname 2>/dev/null || uname -n)..."\n'
            ),
        ),
        StagePlan(
            Stage.GET_SOURCES, "on_success", StageKind.STEP, _body(_HEADINGS[Stage.GET_SOURCES], *sources)
        ),
    ]
    if any((c.paths or c.untracked) and c.policy != "push" for c in spec.cache):
        stages.append(_helper_stage(Stage.RESTORE_CACHE, "on_success", "cache-restore"))
    if any(dep.artifacts_file is not None for dep in spec.dependencies):
        stages.append(_helper_stage(Stage.DOWNLOAD_ARTIFACTS, "on_success", "artifacts-download"))
    return stages


def _helper_stage(stage: Stage, when: str, command: str) -> StagePlan:
    return StagePlan(stage, when, StageKind.STEP, _body(_HEADINGS[stage], _PRELUDE, _helper(command)))


def _user_prelude(opts: ScriptOptions) -> str:
    trace = "set -x\n" if opts.debug_trace else ""
    return _PRELUDE + trace + _LOAD_GITLAB_ENV + 'cd "$CI_PROJECT_DIR"\n'


def _build_stages(spec: JobSpec, opts: ScriptOptions) -> list[StagePlan]:
    sections = spec.features.trace_sections
    stages = []
    for step in spec.script_steps:
        name = f"step_{step.name}"
        lines = list(step.script)
        if name == Stage.STEP_SCRIPT:
            lines = [*filter(None, [opts.pre_build_script]), *lines, *filter(None, [opts.post_build_script])]
        heading = f'Executing "{name}" stage of the job script'
        body = _body(heading, _user_prelude(opts), _commands(lines, sections=sections))
        stages.append(StagePlan(name, step.when or "on_success", StageKind.STEP, body))
    if spec.after_script:
        body = _body(
            _HEADINGS[Stage.AFTER_SCRIPT],
            _green("Running after script..."),
            _user_prelude(opts),
            _commands(spec.after_script, sections=sections),
        )
        stages.append(StagePlan(Stage.AFTER_SCRIPT, "always", StageKind.AFTER, body))
    return stages


def _finish_stages(spec: JobSpec) -> list[StagePlan]:
    stages = []
    saves = [c for c in spec.cache if (c.paths or c.untracked) and c.policy != "pull"]
    if any(c.when in ("on_success", "always", "") for c in saves):
        stages.append(_helper_stage(Stage.ARCHIVE_CACHE, "on_success", "cache-save --job-status success"))
    if any(c.when in ("on_failure", "always") for c in saves):
        stages.append(
            _helper_stage(Stage.ARCHIVE_CACHE_ON_FAILURE, "on_failure", "cache-save --job-status failed")
        )
    if any(a.when in ("on_success", "always", "") for a in spec.artifacts):
        stages.append(
            _helper_stage(
                Stage.UPLOAD_ARTIFACTS_ON_SUCCESS, "on_success", "artifacts-upload --job-status success"
            )
        )
    if any(a.when in ("on_failure", "always") for a in spec.artifacts):
        stages.append(
            _helper_stage(
                Stage.UPLOAD_ARTIFACTS_ON_FAILURE, "on_failure", "artifacts-upload --job-status failed"
            )
        )
    return stages


def render_job_script(spec: JobSpec, opts: ScriptOptions) -> JobScript:
    """Render the phases of ``spec`` with the runner's hooks and switches."""
    return JobScript(
        phases={
            Phase.PREPARE: tuple(_prepare_stages(spec, opts)),
            Phase.BUILD: tuple(_build_stages(spec, opts)),
            Phase.FINISH: tuple(_finish_stages(spec)),
        }
    )


def parse_stage_results(text: str) -> dict[str, int]:
    """Read the sequencer's ``<stage>=<exit code>`` lines; later lines win, junk is skipped."""
    results: dict[str, int] = {}
    for line in text.splitlines():
        stage, sep, code = line.strip().partition("=")
        if sep and code.lstrip("-").isdigit():
            results[stage] = int(code)
    return results
