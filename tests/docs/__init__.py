"""The documentation site: built in strict mode, its code run, its tables checked against the code."""
