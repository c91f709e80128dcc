/*!
Reserved for coldstart's lazy telemetry exporters (Prometheus metrics and
OpenTelemetry tracing that start after the first response). Empty until that work
lands; nothing depends on it yet, so it adds nothing to any build that uses coldstart.
*/
