# syntax=docker/dockerfile:1
# One image for every tocsin worker kind:
#   tocsin run processor|agents|notifier|gateway|ingest, tocsin topics create, ...
# Built from uv.lock, so the image runs exactly the locked dependency set (no dev group).
#
#   docker build -t tocsin:0.1.0 .
#
# Build stage: resolve nothing, install the locked set into /app/.venv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
# the same uv as the Makefile bootstraps, from PyPI, in a venv of its own: Debian's
# python3.11 refuses a system-wide pip install (PEP 668), python:*-slim accepts both
ARG UV_VERSION=0.13.9
RUN python3.11 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
# python3.11 from PATH: /usr/local/bin in python:*-slim, /usr/bin in a Debian base; the
# runtime stage starts from the same image, so the venv's interpreter link holds there
# UV_NO_CACHE: the downloads stay out of the build stage's layers (a smaller commit)
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# dependencies first: this layer is reused until uv.lock changes
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY schemas ./schemas
COPY processors ./processors
COPY connectors ./connectors
COPY streams ./streams
# --no-editable: the venv holds tocsin itself, so the runtime stage needs no source tree
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

# Runtime stage: the venv, the default rules and the example config; no compilers, no uv.
FROM ${PYTHON_IMAGE}
# tini as PID 1 forwards SIGTERM to tocsin (which finishes its batch, commits and leaves
# the consumer group) and reaps zombies. A base that already has it (a Debian base built
# offline with tini included) needs no package index.
RUN if [ ! -x /usr/bin/tini ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 10001 tocsin \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tocsin
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY rules ./rules
COPY examples ./examples
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes; bytecode was
# compiled at build time. Secrets are never baked in: they come from the environment or
# from files named by *_FILE variables (Kubernetes Secrets mounted as volumes).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOCSIN_LOG_FORMAT=json
LABEL org.opencontainers.image.title="tocsin" \
      org.opencontainers.image.description="Event-driven incident response on Apache Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
# numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
USER 10001:10001
# 8080: the gateway's HTTP API (with its /metrics, /healthz, /readyz);
# 9400: /metrics, /healthz, /readyz of every other worker
EXPOSE 8080 9400
ENTRYPOINT ["/usr/bin/tini", "--", "tocsin"]
CMD ["--help"]
