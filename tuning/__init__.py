"""keras-tuner searches over the suite's cells and the LSTM-variant ablation of Greff et al.,
for any task: the apps and the built-in tasks, through one protocol.

Modules: `space` (the search space), `adapters` (the protocol: a task's config, data,
model and objective), `tasks` and `task_models` (JSB Chorales and the procedural copy and
sign-memory tasks), `app_adapters` (the apps, through their config, data and model
modules), `hypermodel` (an adapter as a keras-tuner hypermodel), `oracles` (random /
Bayesian / Hyperband, per-variant searches, safe to kill), `search` (the resumable,
distributable launcher), `config` (the command line's options), `report` (tables, Welch's
t-tests, hyperparameter importance, Greff-style plots), `demo` (a small ablation on the
adding problem). Command line: `python -m tuning search TASK ...`, `python -m tuning
report RUN_DIR`, `python -m tuning demo` (see tuning/README.md).
"""
