FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/newsbot --uid 10001 newsbot

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && rm -rf /root/.cache

COPY rules ./rules
RUN mkdir -p /app/state && chown newsbot:newsbot /app/state

USER newsbot
VOLUME ["/app/state"]

# Configure with env (TELEGRAM_BOT_TOKEN or TELEGRAM_BOT_TOKEN_FILE for Docker secrets) and
# an optional config mounted at /app/newsbot.toml; rules/ can be mounted over /app/rules.
ENTRYPOINT ["newsbot"]
CMD ["run"]
