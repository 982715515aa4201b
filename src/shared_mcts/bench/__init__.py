"""The benchmark matrix (workloads x methods x trial budgets x seeds), its results file, and
the report built from it."""
