"""``python -m bench``: run the Vignette-vs-Synapse client-API benchmark."""

from bench.cli import main

raise SystemExit(main())
