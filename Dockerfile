# RoboTrader: one image for every process (web, Celery worker and beat, Telegram, Discord,
# migrations); docker-compose.yml picks the command. Secrets come from the environment
# (env_file), never from the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 robotrader \
    && useradd --system --uid 10001 --gid robotrader --create-home --home-dir /home/robotrader \
       --shell /usr/sbin/nologin robotrader

WORKDIR /app
COPY pyproject.toml README.md ./
COPY robotrader ./robotrader
COPY bots ./bots
COPY engine ./engine
COPY billing ./billing
COPY db ./db
COPY web ./web
# The backtester's compiled code (numba) is compiled here, from the installed package (-I:
# not from /app), into a cache the runtime user reads and may update.
ENV NUMBA_CACHE_DIR=/opt/numba-cache
RUN pip install . && rm -rf /app/build \
    && python -I -c "import engine.backtest.fill_walk, engine.backtest.equity_curve" \
    && chown -R robotrader:robotrader /opt/numba-cache

USER robotrader
WORKDIR /home/robotrader
ENV ROBOTRADER_ENVIRONMENT=production \
    ROBOTRADER_DATA_DIR=/home/robotrader/var \
    ROBOTRADER_WEB_HOST=0.0.0.0 \
    ROBOTRADER_WEB_PORT=8000

EXPOSE 8000
# The web app's own health endpoint (database, Redis, age of the last engine tick).
# Services without an HTTP port override this in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# SIGTERM (docker stop) makes every robotrader process finish its in-flight work and exit 0.
STOPSIGNAL SIGTERM
CMD ["robotrader", "web"]
