"""Known answers with provenance (published results and independent implementations)."""
