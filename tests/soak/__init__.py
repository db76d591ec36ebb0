"""The soak: back-to-back barriers in the cluster in a box, with skew, restarts and DNS faults.

`python -m tests.soak` (or `make soak`) runs them and counts hangs, early releases and wrong
releases; `test_soak_short.py` is the short variant `make test` runs.
"""
