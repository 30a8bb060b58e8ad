"""bayes_opt's quickstart, unchanged but for the import line: gpbo as a drop-in for bayes_opt.

Run: python examples/bayes_opt_quickstart.py
"""

from gpbo.compat.bayes_opt import BayesianOptimization


def black_box_function(x, y):
    return -x ** 2 - (y - 1) ** 2 + 1


pbounds = {'x': (-2, 2), 'y': (-3, 3)}
optimizer = BayesianOptimization(f=black_box_function, pbounds=pbounds, random_state=1)
optimizer.maximize(init_points=5, n_iter=10)
print(optimizer.max)
