"""Quality evaluations and performance benchmarks that print figures (tables + one JSON summary)."""
