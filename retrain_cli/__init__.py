"""`retrain`, the operator's command line: talks only to the app's HTTP API (not deployed with the app)."""
