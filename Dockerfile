# The line's one image: web by default; the worker, cron and release run the same image with their
# Procfile line as the command (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY voice ./voice
COPY workers ./workers
# The simulated phone, the fake Twilio and the embedded Redis are development tools: not in production.
RUN rm -rf voice/simulator \
    && pip install . \
    && rm -rf voice workers build *.egg-info \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin line

# Never root: the app writes nothing but gunicorn's control socket, in its home.
USER line
EXPOSE 5000

# The Procfile's web line.
CMD ["sh", "-c", "gunicorn --bind 0.0.0.0:${PORT:-5000} --workers ${WEB_CONCURRENCY:-2} --threads 4 --timeout 20 --access-logfile - 'voice:create_app()'"]
