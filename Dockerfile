# The application image: Luigi tasks, luigid, the cron runner and the inbox watcher.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIPELINE_RUNTIME_DIR=/var/lib/pipeline

RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client curl tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY pipeline ./pipeline
COPY flags ./flags
COPY monitoring ./monitoring
COPY stack ./stack
COPY demo ./demo
RUN pip install . && pip check
COPY luigi.cfg crontab ./

RUN useradd --system --uid 10001 --home-dir /app pipeline \
 && mkdir -p /var/lib/pipeline /var/lib/luigid \
 && chown -R pipeline /var/lib/pipeline /var/lib/luigid
USER pipeline

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "pipeline.cron"]
