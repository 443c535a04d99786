"""A local, real stand-in for Azure Machine Learning (v2): ARM workspace subset, jobs that run, MLflow tracking, endpoints."""
