"""The producer: a live-stream audience simulator and a Kafka sender."""
