"""One small store class per table group; each keeps its SQL as module constants."""
