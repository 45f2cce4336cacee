"""keras-tuner searches over the suite's cells and the LSTM-variant ablation of Greff et al.

Modules: `space` (the search space), `tasks` (JSB Chorales and the procedural tasks),
`hypermodels` (tasks and apps as keras-tuner hypermodels), `adapters` (apps tuned with
their own model builders), `oracles` (random / Bayesian / Hyperband, and per-variant
searches), `search` (the resumable, distributable launcher), `report` (tables, Welch's
t-tests, hyperparameter importance, Greff-style plots). Command line: `python -m tuning
search ...` and `python -m tuning report RUN_DIR` (see tuning/README.md).
"""
