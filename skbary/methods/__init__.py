"""The methods' algorithms: network roles, initialisation and training steps, no scikit-learn."""
