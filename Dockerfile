FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, in a layer of their own: a change to the code reuses it instead of
# reinstalling ~250 MB. requirements.lock pins every one with its hashes (pip-compile
# --generate-hashes from pyproject.toml): pip refuses a file whose hash differs.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the code, without dependencies: all of them are in the layer above.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 amlbot && mkdir -p /data && chown amlbot /data
# The SQLite database and the audit key generated beside it live here: mount a volume, or they
# are lost with the container.
VOLUME /data
USER amlbot
WORKDIR /data
ENV AMLBOT_HOST=0.0.0.0 PORT=3000 AMLBOT_DATABASE_URL=sqlite:////data/amlbot.db AMLBOT_CONFIG=/config/config.yml
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"

CMD ["amlbot", "serve"]
