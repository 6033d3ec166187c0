"""Prometheus: the query client and the second witness that asks it what it sees."""
