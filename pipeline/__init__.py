"""The Luigi tasks of every flow, and the shared pieces they use (sources, sinks, notifications)."""
