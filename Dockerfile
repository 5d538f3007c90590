# The application image: Luigi tasks, luigid, the cron runner and the inbox watcher.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIPELINE_RUNTIME_DIR=/var/lib/pipeline

# Java and Debian's PostgreSQL JDBC driver: the runner is the Spark driver (pipeline.systems.spark);
# openjdk's postinst needs the man folder that slim images leave out.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client curl tini \
      openjdk-17-jre-headless libpostgresql-jdbc-java \
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
