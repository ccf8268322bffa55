"""Evaluation of detectors against labelled data (the NAB scoring method)."""
