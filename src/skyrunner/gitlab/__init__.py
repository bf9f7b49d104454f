"""GitLab's runner API: the client (the only code that speaks HTTP to GitLab) and its wire models."""

from skyrunner.gitlab.client import CoordinatorClient, JobRequestResult
from skyrunner.gitlab.models import Registration, RegistrationRequest, RunnerInfo, build_features

__all__ = [
    "CoordinatorClient",
    "JobRequestResult",
    "Registration",
    "RegistrationRequest",
    "RunnerInfo",
    "build_features",
]
