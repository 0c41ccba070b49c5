"""OpenTelemetry for Pipecat-style bots: set the tracer provider up, turn call records into
traces (extra ``callpipe[otel]``)."""
