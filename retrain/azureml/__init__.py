"""Azure Machine Learning (v2): the workspace reference, its ARM/MLflow client, and the hosts its credentials may go to."""

from retrain.outbound import arm_host, register_kind

register_kind("azureml", "Azure Machine Learning",
              lambda env: (arm_host(env), "*.api.azureml.ms", "*.inference.ml.azure.com"))
