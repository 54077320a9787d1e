"""Pulumi component resources that run AnythingLLM on AWS EKS."""
