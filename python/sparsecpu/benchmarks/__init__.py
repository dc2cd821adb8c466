"""Benchmark harnesses behind `sparsecpu bench` and the scripts in bench/."""
