"""skyrunner: a GitLab-compatible CI runner for serverless Kubernetes."""

from skyrunner._version import REVISION, VERSION

__all__ = ["REVISION", "VERSION"]
