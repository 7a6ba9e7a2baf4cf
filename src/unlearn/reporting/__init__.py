"""Human-readable results: per-run ``report.md`` with the papers' figures, and comparisons across runs."""
