"""The ingest service: an Ingestor wired from the container's index, embedder and settings.

The CLI, the server's upload route, the eval runner and the benchmarks all build it here, so
an ingest setting means the same thing wherever a document comes in."""

from __future__ import annotations

from ingest.chunking import Chunker
from ingest.loaders import LoadOptions
from ingest.sync import Ingestor
from rag.container import Container


def build_ingestor(c: Container) -> Ingestor:
    s = c.settings.ingest
    return Ingestor(
        index=c.index,
        embedder=c.embedder,
        detector=c.detector,
        chunker=Chunker(c.tokens, chunk_tokens=s.chunk_tokens, overlap=s.chunk_overlap),
        options=LoadOptions(
            currency=s.currency,
            max_bytes=int(s.max_file_mb * 1e6),
            max_unzipped_bytes=int(s.max_unzipped_mb * 1e6),
            max_unzipped_text_bytes=int(s.max_unzipped_text_mb * 1e6),
            max_zip_entries=s.max_zip_entries,
            max_pdf_pages=s.max_pdf_pages,
        ),
        embed_batch=s.embed_batch,
        write_batch=s.write_batch,
    )
