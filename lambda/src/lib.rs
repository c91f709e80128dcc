/*!
Reserved for coldstart's AWS Lambda runtime integration (cold-start-aware handler,
telemetry flushed before the freeze). Empty until that work lands; nothing depends on
it yet, so it adds nothing to any build that uses coldstart.
*/
