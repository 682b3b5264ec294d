#!/usr/bin/python3
"""Debian 12's prometheus-pgbouncer-exporter (1.7) with its SHOW STATS columns brought up to
date: it asks for `total_requests`, which PgBouncer renamed in 1.8 (total_query_count and
total_xact_count), so every scrape failed with KeyError against Debian's PgBouncer 1.18.  The
other collectors (SHOW POOLS, DATABASES, LISTS) are the package's, unchanged.  Exported as
pgbouncer_queries_total and pgbouncer_transactions_total (gauges, as the package exports all
of its counters), per database."""
from prometheus_pgbouncer_exporter import cli, collectors

_metrics = dict(collectors.StatsCollector.metrics)
_metrics.pop("total_requests", None)
_metrics["total_query_count"] = (
    "queries_total", "Total number of SQL queries pooled by pgbouncer")
_metrics["total_xact_count"] = (
    "transactions_total", "Total number of SQL transactions pooled by pgbouncer")
collectors.StatsCollector.metrics = _metrics

if __name__ == "__main__":
    cli.main()
