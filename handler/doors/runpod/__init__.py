"""The RunPod door: the serverless worker (``worker``) and its success output (``payload``)."""
