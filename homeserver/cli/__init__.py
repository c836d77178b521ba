"""Console scripts shipped with Vignette."""
