"""The job's variables as the pod builder reads them: values, and which of them are secret.

Pure: no I/O. Every value of the job's environment goes to the pod through the per-job Secret;
only what the builder itself writes into the pod spec (image names, annotations, labels, node
selectors) is expanded here, and that expansion refuses masked variables: a masked value must
never reach the pod spec, its labels or its annotations. The job token never does either, as it
is only ever in the Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from skyrunner.executors.kubernetes._report import BuildReport
from skyrunner.job.variables import JobVariables, expand

__all__ = ["JobEnvironment"]


@dataclass(frozen=True, slots=True)
class JobEnvironment:
    """The job's expanded environment and the keys whose values may not enter the pod spec."""

    values: Mapping[str, str]
    masked: frozenset[str]
    public: frozenset[str]
    """Keys gitlab-runner passes to service containers too (public or runner-set, not files)."""

    @classmethod
    def of(cls, variables: JobVariables) -> JobEnvironment:
        last = {item.key: item for item in variables.items}
        return cls(
            values=variables.environment(),
            masked=frozenset(key for key, item in last.items() if item.masked),
            public=frozenset(key for key, item in last.items() if item.public and not item.file),
        )

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def overwrite(self, key: str, where: str, report: BuildReport) -> str:
        """The value of a ``KUBERNETES_*`` variable that goes into the pod spec, or ``""``."""
        value = self.get(key).strip()
        if value and key in self.masked:
            report.error(f"{key} is masked, so its value cannot go into the pod's {where}")
            return ""
        return value

    def expand_visible(self, text: str, where: str, report: BuildReport) -> str:
        """Expand ``$VAR`` in a pod spec field; a masked variable is an error, not a value."""
        used: list[str] = []

        def lookup(key: str) -> str:
            if key in self.masked:
                used.append(key)
                return ""
            return self.values.get(key, "")

        result = expand(text, lookup)
        for key in dict.fromkeys(used):
            report.error(f"{where} uses the masked variable {key}, which cannot go into the pod spec")
        return result
