"""Fuzzing the sans-IO wire layer and the decoder: shared invariants (harness), seeds (corpus), a FIX-aware
mutator (mutate) and the atheris entry point (run). See fuzz/README.md."""
