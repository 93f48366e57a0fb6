"""Code generators; each reads the checked IR (nndsl.ir) only."""
