"""The training core shared by both emulators: reading tables, fitting scikit-learn, evaluating, model files (skops)."""
