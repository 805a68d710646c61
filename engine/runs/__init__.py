"""Runs: training in the background for the course. A run's status and snapshot as the pages see it, the
bounded queue of runs, and the worker process each run trains in."""
