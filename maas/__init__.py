"""maas: models as a service on AWS serverless, speaking the Open Inference Protocol v2."""

__version__ = "0.1.0"
