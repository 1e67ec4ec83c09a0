"""Fuzzing of every parser and decoder that meets untrusted bytes (Hypothesis).

The properties live in :mod:`fuzz.properties`; the suite (``test_fuzz_*.py``) runs each
a few hundred times with a fixed seed, ``scripts/fuzz_campaign.py`` a million times over.
"""
