"""Benchmarks: one command each (``python benchmarks/<name>.py``), every figure a ratio to a reference measured
in the same run. A package only so that tests can import the pure helpers (``from benchmarks import registry``).
"""
