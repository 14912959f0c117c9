"""Ingestion: loaders (one per format), chunking, incremental sync into the knowledge index."""
