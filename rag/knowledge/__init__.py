"""Knowledge: the index of the seller's documents, retrieval over it, and context selection."""
