"""Product benchmarks: indexing, engines, encoding, the search page. Run from the repository root:
`python -m bench.index_bench --help` (README, "Layout")."""
