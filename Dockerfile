# One image for every chatbus process (edge, worker, relay, migrate, up); see compose.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs (the repo has no .dockerignore; keep .venv/.chatbus out of the image).
COPY pyproject.toml README.m[d] ./
COPY api ./api
COPY bus ./bus
COPY chatbus ./chatbus
COPY schemas ./schemas
COPY services ./services
RUN pip install . \
    && useradd --create-home --uid 10001 chatbus

USER chatbus
WORKDIR /home/chatbus
EXPOSE 6285
# `chatbus up` runs everything in one container (embedded NATS and Postgres under ./.chatbus);
# compose.yaml overrides the command per service.
CMD ["chatbus", "up", "--host", "0.0.0.0"]
