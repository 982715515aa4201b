"""The search core: tree, tree policies, budgets and the search loop.

Pure Python by design: nothing here imports TVM or a network client. The schedule space,
measurement, cost model and proposers are reached through the small protocols in engine.py,
so the whole loop runs in milliseconds with fakes.
"""
