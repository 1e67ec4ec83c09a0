"""The creation budget: new anonymous sessions per client and minute, counted in the shared store."""
