"""The edges: source decoders and delivery sinks. Imports schemas only."""
