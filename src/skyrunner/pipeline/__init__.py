"""Local pipelines: .gitlab-ci.yml loading, validation and job payloads (``skyrunner exec``).

``read_checkout`` reads the git checkout (the package's only I/O), ``load_pipeline`` turns its
``.gitlab-ci.yml`` into a validated ``Pipeline``, and ``build_job_payload`` renders one of its
jobs as the JobResponse JSON GitLab would send, for the same JobRunner production uses.
"""

from skyrunner.pipeline.checkout import Checkout, RefType, read_checkout, read_source
from skyrunner.pipeline.expressions import evaluate
from skyrunner.pipeline.loader import build_pipeline, load_pipeline
from skyrunner.pipeline.model import (
    Artifacts,
    Cache,
    CachePolicy,
    Image,
    Need,
    ParallelOrigin,
    Pipeline,
    PipelineJob,
    Report,
    Retry,
    SaveWhen,
    Service,
    Variable,
    When,
    Workflow,
)
from skyrunner.pipeline.payload import build_job_payload

__all__ = [
    "Artifacts",
    "Cache",
    "CachePolicy",
    "Checkout",
    "Image",
    "Need",
    "ParallelOrigin",
    "Pipeline",
    "PipelineJob",
    "RefType",
    "Report",
    "Retry",
    "SaveWhen",
    "Service",
    "Variable",
    "When",
    "Workflow",
    "build_job_payload",
    "build_pipeline",
    "evaluate",
    "load_pipeline",
    "read_checkout",
    "read_source",
]
