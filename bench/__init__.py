"""Vignette's benchmark harness: the same client-API workloads against Vignette and Synapse.

A script package, not tests: run ``python -m bench --help`` from the repository root.
"""
