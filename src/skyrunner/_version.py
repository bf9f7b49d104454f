"""The runner's version, reported to GitLab in ``info`` and printed in every trace header."""

from typing import Final

VERSION: Final = "0.1.0"
# The revision is stamped at build time by the Dockerfile; a source checkout reports "source".
REVISION: Final = "source"
