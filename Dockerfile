# syntax=docker/dockerfile:1
# The skyrunner image. It is both the runner (`skyrunner run`, the Deployment of
# `skyrunner deploy`) and the job pods' helper image (`python -m skyrunner.helper` in the
# `prepare` and `helper` containers), so the runner and its helper are always one version.

# -- build: the wheel of this checkout --------------------------------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README* ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# -- run: python, git, git-lfs, CA certificates and the wheel, as a non-root user -------------
FROM python:3.11-slim-bookworm
# apt versions are not pinned (DL3008): bookworm's security updates replace pinned ones
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates git git-lfs \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 skyrunner \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/skyrunner --shell /usr/sbin/nologin skyrunner
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/skyrunner
USER 10001:10001
WORKDIR /home/skyrunner
EXPOSE 9252
# gitlab-runner's graceful stop; Kubernetes sends SIGTERM instead, hence `run --sigterm graceful`
STOPSIGNAL SIGQUIT
ENTRYPOINT ["skyrunner"]
CMD ["run"]
