"""Benchmarks of the SDK against a bare QuickFIX baseline (GitHub issue 7). See docs/performance.md.

``python -m bench`` runs the full suite (the published numbers), ``python -m bench --quick`` a short one.

Modules:

* ``_stream``: the realistic message stream (built with ``dropcopy_client.testing`` builders, unique ids
  forever) and its fast framing; ``sender``: the minimal FIX acceptor process that blasts, paces or
  generates it; ``receivers``: the bare QuickFIX baseline and the full SDK, each in its own process;
* one module per measurement: ``throughput``, ``latency``, ``recovery``, ``footprint``, ``startup``,
  ``breakdown`` (where the time goes), ``sinks`` (rows/s of the shipped sinks) and ``book`` (the position
  book's path, memory and rebuild);
* ``bench_decode``: the single-thread decode micro-benchmark (``python bench/bench_decode.py``).
"""
