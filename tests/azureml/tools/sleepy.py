"""A job script for tests: log one metric, then sleep (so it can be cancelled or cut off by a restart)."""
import sys
import time

import mlflow

mlflow.log_metric("started", 1)
print("sleeping", flush=True)
time.sleep(float(sys.argv[1]))
