"""kefu core: domain types, ports, adapters, retrieval and the answer pipeline."""
