"""The MLS delivery service (docs/mls.md): KeyPackages, the commit log, Welcomes, hygiene."""
