"""Logs, traces and metrics for the processor and the operators' tools."""
