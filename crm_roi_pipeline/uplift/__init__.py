"""Uplift statistics: counterfactuals, intervals, placebo tests and staggered rollouts, as pure functions."""
