"""The statistics: counterfactuals, intervals, the second opinion, placebo tests and staggered rollouts, as pure
functions of arrays and dates. A leaf: nothing here knows windows, DuckDB or Dagster (test_layers.py)."""
