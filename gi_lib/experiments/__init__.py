"""Experiment drivers behind the notebooks: all logic a notebook runs is here,
where tests reach it; a notebook only sets parameters, calls and shows."""
