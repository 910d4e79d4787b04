"""Benchmarks for jsonmode (not installed with the package).

``python -m benchmarks.maskbench DATA --tokenizer DIR --engine jsonmode --engine llguidance ...``
runs the MaskBench protocol (JSONSchemaBench, arXiv 2501.10868) over a directory or ``.tar.xz``
of MaskBench files; see :mod:`benchmarks.maskbench`.  Peer adapters live in
:mod:`benchmarks._engines`.
"""
