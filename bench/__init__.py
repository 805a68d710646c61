"""Benchmarks, beside tests/ and imported by nothing in the course: `python -m bench NAME` (bench.cli lists them).

Each appends its figures to docs/benchmarks.md; speed targets live here, never in timed unit tests. The app server
(bench.app_server) serves the course in a child process for the browser benchmarks and the browser tests.
"""
