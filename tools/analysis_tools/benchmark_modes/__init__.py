"""The modes of tools/analysis_tools/benchmark.py, one module each, over
shared set-up (``common``) and reporting (``report``)."""
