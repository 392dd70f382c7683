"""mlapi: sentiment analysis as a Kubernetes-native service."""

__version__ = "0.1.0"
