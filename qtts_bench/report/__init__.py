"""Reports: read the results store (docs/results-format.md) into one table model, render it.

``load`` reads run folders, ``stats`` bootstraps, ``table`` builds the neutral model, and
``csv`` / ``html`` / ``plots`` / ``listen`` render it. Nothing here imports the runner, the
systems or torch: reports read only the store.
"""
