"""Shared app harness: run directory, config, strategy, callbacks, export, plots."""
