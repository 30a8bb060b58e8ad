"""Drop-in replacements for other optimization packages' APIs, backed by gpbo.

- :mod:`gpbo.compat.bayes_opt`: ``BayesianOptimization`` of the ``bayes_opt`` package
  (``bayesian-optimization`` 3.x), with batches of points run on gpbo's executors.

Nothing is imported here: ``import gpbo.compat`` stays light.
"""

from __future__ import annotations
