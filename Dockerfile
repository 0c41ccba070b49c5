# A callpipe phone bot image: slim, non-root, Silero VAD model loaded and checked at build.
#
#   docker build -t phone-bot .                                    # the example phone agent
#   docker build -t phone-bot --build-arg BOT_DIR=path/to/your/bot .
#   docker run --env-file .env -p 7860:7860 phone-bot \
#       python bot_twilio.py -t twilio -x bot.example.com --host 0.0.0.0
#
# docs/deploy/kubernetes.yaml runs this image.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# Silero VAD (onnxruntime) and Prometheus metrics; add the extras your bot needs.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install ".[silero,metrics]" \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 bot \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin bot
COPY --from=build /opt/venv /opt/venv
# Load the Silero model once at build: the build fails if it is missing or onnxruntime cannot
# run here, instead of the first call failing in production.
RUN python -c "from callpipe.audio.vad.silero import SileroVADAnalyzer; SileroVADAnalyzer()"

ARG BOT_DIR=examples/phone_agent
WORKDIR /app
COPY ${BOT_DIR}/ ./
USER 10001:10001
EXPOSE 7860
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/health', timeout=2)"]
# Pass -t PROVIDER -x PUBLIC_HOST for a real number (see README "Put it on a real phone number").
CMD ["python", "bot_twilio.py", "--host", "0.0.0.0", "--port", "7860"]
