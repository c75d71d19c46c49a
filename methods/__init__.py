"""Method adapters: one module per method family plus shared blocks."""
