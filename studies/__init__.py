"""One-off studies behind docs/RESULTS.md (studies/README.md). Run from the repository root:
`python -m studies.fusion_study --help`."""
