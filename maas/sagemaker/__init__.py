"""Large models on SageMaker endpoints: Triton packages, and the deployer that moves endpoints."""
