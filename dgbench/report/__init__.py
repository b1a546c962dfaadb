"""What dgbench shows: tables as text (markdown, LaTeX, CSV, DomainBed), paired comparisons,
plots, the HTML report, and the generated docs (augmenter table, fidelity table) and feature
inspector."""
