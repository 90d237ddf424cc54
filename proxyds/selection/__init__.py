"""Pure array cores of the selection: case importance, nearest-reference mapping, the
weighted draw and label reduction, and the one selector registry (build and evaluate)."""
