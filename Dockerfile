# One image for every tocsin worker kind: `tocsin run processor|agents|notifier|gateway`.
# Built from uv.lock so the image runs exactly the locked dependency set.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY schemas ./schemas
COPY processors ./processors
COPY connectors ./connectors
COPY streams ./streams
COPY rules ./rules
COPY examples ./examples
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home tocsin
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 TOCSIN_LOG_FORMAT=json
USER 10001
EXPOSE 8080 9400
# exec form: SIGTERM reaches tocsin directly, which finishes its batch and leaves the group
ENTRYPOINT ["tocsin"]
CMD ["--help"]
