"""The fault campaign of the suite (`python -m benchmarks.reliability`): kill -9 during
training, tuner searches and tokenizer building; malformed files and option values; hostile
batches and threads against every export; two workers killed and resumed. See
`__main__.py` and the root README's reliability section."""
