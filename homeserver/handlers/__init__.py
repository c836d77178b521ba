"""Business logic, one module per area; no HTTP in here (MatrixError helpers aside)."""
