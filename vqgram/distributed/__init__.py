"""Past one machine: encode a folder on an existing engine (Ray Data or Spark) into Parquet rows,
build and merge shards, export to OpenSearch / Elasticsearch (docs/SCALE.md)."""
