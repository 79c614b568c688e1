FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Installed the way the README installs it: the package from pyproject.toml.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN pip install --upgrade pip && pip install .

RUN useradd --create-home --uid 10001 amlbot && mkdir -p /data && chown amlbot /data
USER amlbot
WORKDIR /data
ENV AMLBOT_HOST=0.0.0.0 PORT=3000 AMLBOT_DATABASE_URL=sqlite:////data/amlbot.db AMLBOT_CONFIG=/config/config.yml
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"

CMD ["amlbot", "serve"]
